-- ZMTP 3.x (ZeroMQ Message Transport Protocol, RFC 23 and RFC 37) for Wireshark and tshark.
--
-- Use:   wireshark -X lua_script:wireshark/zmtp.lua capture.pcap
--        tshark -X lua_script:wireshark/zmtp.lua -r capture.pcap -Y zmtp
-- or copy this file to ~/.local/lib/wireshark/plugins/.
--
-- ZMTP has no well-known port, so the dissector finds it by its greeting: a
-- TCP stream whose first octets are FF, eight octets of padding, 7F. From
-- there on it decodes the greeting, commands (READY and INITIATE metadata,
-- ERROR, PING/PONG, SUBSCRIBE/CANCEL, PLAIN HELLO without the password, CURVE
-- nonces) and message frames. Frames split over TCP segments are reassembled;
-- several frames in one segment are each shown. "Decode As... ZMTP" works for
-- streams whose start is not in the capture (then the greeting is not seen
-- and every PDU is taken to be a frame).
--
-- The harness's own decoder is conformance/zmtp_conformance/capture/dissect.py;
-- the tests check that both read the golden captures alike.

local zmtp = Proto("zmtp", "ZeroMQ Message Transport Protocol")

local F = {
    signature = ProtoField.bytes("zmtp.signature", "Signature"),
    major = ProtoField.uint8("zmtp.version.major", "Major version"),
    minor = ProtoField.uint8("zmtp.version.minor", "Minor version"),
    mechanism = ProtoField.string("zmtp.mechanism", "Mechanism"),
    as_server = ProtoField.uint8("zmtp.as_server", "As-server"),
    filler = ProtoField.bytes("zmtp.filler", "Filler"),
    flags = ProtoField.uint8("zmtp.flags", "Flags", base.HEX),
    flag_more = ProtoField.bool("zmtp.flags.more", "More", 8, nil, 0x01),
    flag_long = ProtoField.bool("zmtp.flags.long", "Long", 8, nil, 0x02),
    flag_command = ProtoField.bool("zmtp.flags.command", "Command", 8, nil, 0x04),
    flag_reserved = ProtoField.uint8("zmtp.flags.reserved", "Reserved", base.HEX, nil, 0xF8),
    size = ProtoField.uint64("zmtp.size", "Size"),
    command = ProtoField.string("zmtp.command", "Command"),
    command_data = ProtoField.bytes("zmtp.command.data", "Command data"),
    prop_name = ProtoField.string("zmtp.property.name", "Property name"),
    prop_value = ProtoField.bytes("zmtp.property.value", "Property value"),
    prop_text = ProtoField.string("zmtp.property.text", "Property value (text)"),
    error_reason = ProtoField.string("zmtp.error.reason", "Error reason"),
    ping_ttl = ProtoField.uint16("zmtp.ping.ttl", "TTL (deciseconds)"),
    ping_context = ProtoField.bytes("zmtp.ping.context", "Context"),
    topic = ProtoField.bytes("zmtp.subscription.topic", "Topic"),
    username = ProtoField.string("zmtp.plain.username", "Username"),
    password_size = ProtoField.uint8("zmtp.plain.password_size", "Password size"),
    nonce = ProtoField.bytes("zmtp.curve.nonce", "Nonce"),
    box = ProtoField.bytes("zmtp.curve.box", "Box"),
    body = ProtoField.bytes("zmtp.body", "Body"),
    body_text = ProtoField.string("zmtp.body.text", "Body (text)"),
}
zmtp.fields = F

local E = {
    reserved = ProtoExpert.new("zmtp.reserved_flags", "Reserved flag bits set (RFC 23: MUST be zero)",
        expert.group.MALFORMED, expert.severity.WARN),
    command_more = ProtoExpert.new("zmtp.command_more", "MORE set on a command (RFC 23: SHALL be zero)",
        expert.group.MALFORMED, expert.severity.WARN),
    bad_name = ProtoExpert.new("zmtp.bad_command_name", "Command name size exceeds the frame",
        expert.group.MALFORMED, expert.severity.ERROR),
    filler = ProtoExpert.new("zmtp.filler_nonzero", "Greeting filler is not all zero",
        expert.group.PROTOCOL, expert.severity.NOTE),
}
zmtp.experts = { E.reserved, E.command_more, E.bad_name, E.filler }

local f_tcp_seq = Field.new("tcp.seq")
local f_tcp_stream = Field.new("tcp.stream")

-- Mechanism per TCP stream and direction, learnt from the greetings (for CURVE's MESSAGE boxes).
local mechanisms = {}

local function is_printable(tvb)
    local s = tvb:raw()
    return #s > 0 and not s:find("[^\32-\126]")
end

-- Bytes needed for the PDU at `offset`, or nil when more must be read to tell. A PDU that
-- starts with FF is a greeting: as frame flags FF would set reserved bits, which is never valid.
local function pdu_length(tvb, offset)
    local left = tvb:len() - offset
    if left < 2 then
        return nil
    end
    local flags = tvb(offset, 1):uint()
    if flags == 0xFF then
        return 64
    end
    if bit.band(flags, 0x02) ~= 0 then
        if left < 9 then
            return nil
        end
        return 9 + tvb(offset + 1, 8):uint64():tonumber()
    end
    return 2 + tvb(offset + 1, 1):uint()
end

local function add_properties(tree, tvb)
    local pos, n = 0, 0
    local summary = {}
    while pos < tvb:len() do
        local nlen = tvb(pos, 1):uint()
        if pos + 1 + nlen + 4 > tvb:len() then break end
        local name = tvb(pos + 1, nlen):string()
        local vlen = tvb(pos + 1 + nlen, 4):uint()
        if pos + 5 + nlen + vlen > tvb:len() then break end
        local sub = tree:add(F.prop_name, tvb(pos + 1, nlen))
        if vlen > 0 then
            local v = tvb(pos + 5 + nlen, vlen)
            sub:add(F.prop_value, v)
            if is_printable(v) then
                sub:add(F.prop_text, v)
                summary[#summary + 1] = name .. "=" .. v:string()
            else
                summary[#summary + 1] = name .. "=<" .. vlen .. " octets>"
            end
        else
            summary[#summary + 1] = name .. "="
        end
        pos = pos + 5 + nlen + vlen
        n = n + 1
    end
    return table.concat(summary, " ")
end

local function dissect_greeting(tvb, tree, key)
    local t = tree:add(zmtp, tvb(0, 64), "ZMTP greeting")
    t:add(F.signature, tvb(0, 10))
    t:add(F.major, tvb(10, 1))
    t:add(F.minor, tvb(11, 1))
    local mech = tvb(12, 20):stringz()
    t:add(F.mechanism, tvb(12, 20), mech)
    t:add(F.as_server, tvb(32, 1))
    local filler = t:add(F.filler, tvb(33, 31))
    for i = 33, 63 do
        if tvb(i, 1):uint() ~= 0 then
            filler:add_proto_expert_info(E.filler)
            break
        end
    end
    mechanisms[key] = mech
    return string.format("Greeting %d.%d %s as-server %d", tvb(10, 1):uint(), tvb(11, 1):uint(), mech,
        tvb(32, 1):uint())
end

local function dissect_command(t, data, mech)
    local nlen = data(0, 1):uint()
    if 1 + nlen > data:len() then
        t:add_proto_expert_info(E.bad_name)
        return "Malformed command"
    end
    local name = data(1, nlen):string()
    t:add(F.command, data(1, nlen))
    local rest = data:len() - 1 - nlen
    if rest <= 0 then
        return name
    end
    local body = data(1 + nlen, rest):tvb()
    local info = name
    if mech == "CURVE" and (name == "HELLO" or name == "WELCOME" or name == "INITIATE" or name == "READY"
            or name == "MESSAGE") then
        if name == "READY" or name == "MESSAGE" then
            t:add(F.nonce, body(0, math.min(8, rest)))
            if rest > 8 then t:add(F.box, body(8)) end
        else
            t:add(F.command_data, body())
        end
    elseif name == "READY" or name == "INITIATE" then
        local props = add_properties(t, body)
        info = name .. " " .. props
    elseif name == "ERROR" then
        local rlen = body(0, 1):uint()
        if 1 + rlen <= rest then
            t:add(F.error_reason, body(1, rlen))
            info = name .. " " .. body(1, rlen):string()
        end
    elseif name == "PING" and rest >= 2 then
        t:add(F.ping_ttl, body(0, 2))
        if rest > 2 then t:add(F.ping_context, body(2)) end
        info = string.format("PING ttl=%d", body(0, 2):uint())
    elseif name == "PONG" then
        t:add(F.ping_context, body())
    elseif name == "SUBSCRIBE" or name == "CANCEL" then
        t:add(F.topic, body())
        info = name .. " " .. (is_printable(body()) and body():string() or "<" .. rest .. " octets>")
    elseif name == "HELLO" and mech == "PLAIN" then
        local ulen = body(0, 1):uint()
        if 2 + ulen <= rest then
            t:add(F.username, body(1, ulen))
            t:add(F.password_size, body(1 + ulen, 1))
            info = "HELLO username=" .. body(1, ulen):string()
        end
    else
        t:add(F.command_data, body())
    end
    return info
end

local function dissect_pdu(tvb, tree, key)
    local flags = tvb(0, 1):uint()
    local long = bit.band(flags, 0x02) ~= 0
    local hdr = long and 9 or 2
    local is_command = bit.band(flags, 0x04) ~= 0
    local t = tree:add(zmtp, tvb(), is_command and "ZMTP command" or "ZMTP frame")
    local ft = t:add(F.flags, tvb(0, 1))
    ft:add(F.flag_more, tvb(0, 1))
    ft:add(F.flag_long, tvb(0, 1))
    ft:add(F.flag_command, tvb(0, 1))
    ft:add(F.flag_reserved, tvb(0, 1))
    if bit.band(flags, 0xF8) ~= 0 then ft:add_proto_expert_info(E.reserved) end
    t:add(F.size, tvb(1, hdr - 1))
    local size = tvb:len() - hdr
    local mech = mechanisms[key] or ""
    if is_command then
        if bit.band(flags, 0x01) ~= 0 then ft:add_proto_expert_info(E.command_more) end
        if size == 0 then return "Empty command" end
        local info = dissect_command(t, tvb(hdr, size), mech)
        t:append_text(": " .. info)
        return info
    end
    local more = bit.band(flags, 0x01) ~= 0 and " MORE" or ""
    if size == 0 then
        return "Frame" .. more .. " (empty)"
    end
    local body = tvb(hdr, size)
    if mech == "CURVE" and size >= 8 and body(0, 8):string() == "\7MESSAGE" then
        -- libzmq sends CURVE's MESSAGE boxes in data frames.
        t:add(F.command, body(1, 7))
        t:add(F.nonce, body(8, math.min(8, size - 8)))
        if size > 16 then t:add(F.box, body(16)) end
        return "MESSAGE (box in a data frame)"
    end
    t:add(F.body, body)
    if is_printable(body) then
        t:add(F.body_text, body)
        return string.format("Frame%s %d: %s", more, size, size <= 40 and body:string() or body(0, 40):string() .. "...")
    end
    return string.format("Frame%s %d octets", more, size)
end

function zmtp.dissector(tvb, pinfo, tree)
    local stream = f_tcp_stream()
    local key = tostring(stream and stream.value or 0) .. ":" .. tostring(pinfo.src_port)
    local offset = 0
    local infos = {}
    while offset < tvb:len() do
        local need = pdu_length(tvb, offset)
        if need == nil or offset + need > tvb:len() then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = need and (offset + need - tvb:len()) or DESEGMENT_ONE_MORE_SEGMENT
            break
        end
        if need == 64 and tvb(offset, 1):uint() == 0xFF then
            infos[#infos + 1] = dissect_greeting(tvb(offset, 64):tvb(), tree, key)
        else
            infos[#infos + 1] = dissect_pdu(tvb(offset, need):tvb(), tree, key)
        end
        offset = offset + need
    end
    if #infos > 0 then
        pinfo.cols.protocol = "ZMTP"
        pinfo.cols.info = table.concat(infos, "; ")
    end
    -- All of it is ZMTP, also the part waiting for its next segments: returning less while
    -- asking for more trips TCP's consistency check.
    return tvb:len()
end

-- A stream is ZMTP when it opens with a greeting's signature: FF, 8 octets, 7F.
local function heuristic(tvb, pinfo, tree)
    local seq = f_tcp_seq()
    if seq == nil or seq.value ~= 1 or tvb:len() < 10 then
        return false
    end
    if tvb(0, 1):uint() ~= 0xFF or tvb(9, 1):uint() ~= 0x7F then
        return false
    end
    pinfo.conversation = zmtp
    zmtp.dissector(tvb, pinfo, tree)
    return true
end

zmtp:register_heuristic("tcp", heuristic)
DissectorTable.get("tcp.port"):add_for_decode_as(zmtp)
