-- wgscope.lua: turn wgscope's packet comments into filterable Wireshark fields.
--
-- wgscope --capture writes one comment per packet, machine-readable pairs first:
--   wgscope: dir=in peer=AbCdEfGh kind=initiation index=123 verdict=dropped reason=bad_mac1 | ...
-- This post-dissector reads the comment (frame.comment; pkt_comment before Wireshark 3.6)
-- and adds a "wgscope" tree with the fields below, e.g.
--   tshark -X lua_script:dissectors/wgscope.lua -r capture.pcapng -Y 'wgscope.verdict == "dropped"'

local wgscope = Proto("wgscope", "wgscope verdict")

local fields = {
    dir     = ProtoField.string("wgscope.dir", "Direction", base.ASCII, "in: received by the node; out: sent by it"),
    peer    = ProtoField.string("wgscope.peer", "Peer", base.ASCII, "First 8 base64 characters of the peer's public key"),
    kind    = ProtoField.string("wgscope.kind", "Message kind", base.ASCII,
                                "initiation, response, cookie_reply, transport, keepalive, or what an invalid datagram looked like"),
    index   = ProtoField.uint32("wgscope.index", "Session index", base.DEC,
                                nil, nil, "Sender index of a handshake message, receiver index otherwise"),
    verdict = ProtoField.string("wgscope.verdict", "Verdict", base.ASCII, "accepted, dropped or sent"),
    reason  = ProtoField.string("wgscope.reason", "Drop reason", base.ASCII, "Why wgscope dropped the datagram"),
    note    = ProtoField.string("wgscope.note", "Explanation", base.ASCII, "wgscope's verdict in words"),
}
wgscope.fields = { fields.dir, fields.peer, fields.kind, fields.index, fields.verdict, fields.reason, fields.note }

local function comment_field()
    for _, name in ipairs({ "frame.comment", "pkt_comment" }) do
        local ok, f = pcall(Field.new, name)
        if ok and f then return f end
    end
    return nil
end
local comment_f = comment_field()

local PREFIX = "wgscope:"

function wgscope.dissector(tvb, pinfo, tree)
    if comment_f == nil then return end
    for _, finfo in ipairs({ comment_f() }) do
        local text = finfo and tostring(finfo.value) or ""
        if text:sub(1, #PREFIX) == PREFIX then
            local body = text:sub(#PREFIX + 1)
            local machine, human = body:match("^(.-)%s+|%s+(.*)$")
            machine = machine or body
            local subtree = tree:add(wgscope, tvb(), "wgscope: " .. (human or machine))
            for key, value in machine:gmatch("([%w_]+)=(%S+)") do
                local f = fields[key]
                if key == "index" then
                    local n = tonumber(value)
                    if n then subtree:add(f, n) end
                elseif f then
                    subtree:add(f, value)
                end
            end
            if human then subtree:add(fields.note, human) end
        end
    end
end

register_postdissector(wgscope)
