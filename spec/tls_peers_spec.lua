-- TLS against real peers: openssl s_server and s_client, curl, Node's tls
-- module; verification failures with their reasons; ALPN, SNI, client
-- certificates, session resumption. Certificates are made at test time.
local neap = require "neap"
local helpers = require "helpers"
local T = require "tls_helpers"
local run = helpers.run

describe("TLS with real peers", function()
  helpers.leakcheck()
  local d
  lazy_setup(function() d = T.certs() end)
  lazy_teardown(function() T.rmcerts(d) end)

  -- a neap TLS server answering each line with "echo: line" (until EOF)
  local function echo_server(opts)
    local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d, opts)))
    srv:serve(function(c)
      for l in c:lines { timeout = 10 } do
        if l == "quit" then break end
        if not c:write("echo: ", l, "\n") then break end
      end
      c:close()
    end)
    local _, port = srv:address()
    return srv, port
  end

  describe("openssl s_server as the server", function()
    it("echoes (s_server -rev) and names the server's certificate in s:tls().peer", function()
      run(function()
        local p, port = T.spawn_port({ "openssl", "s_server", "-accept", "127.0.0.1:0", "-rev",
          "-cert", d .. "/server.pem", "-key", d .. "/server.key" }, "^ACCEPT .*:(%d+)$")
        local c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10 }))
        assert.equal("tls", c:kind())
        c:write("hello neap\n")
        assert.equal("paen olleh", c:read_line { timeout = 10 })
        local info = c:tls()
        assert.matches("^TLSv1%.[23]$", info.version)
        assert.truthy(info.cipher)
        assert.equal(false, info.resumed)
        assert.matches("CN=localhost", info.peer.subject)
        assert.matches("CN=neap test CA", info.peer.issuer)
        assert.equal(64, #info.peer.fingerprint)
        assert.same({ "localhost", "127.0.0.1", "::1" }, info.peer.altnames)
        c:close()
        T.stop(p)
      end, 30)
    end)

    it("ALPN: the protocol s_server -alpn picks from the client's list", function()
      run(function()
        local p, port = T.spawn_port({ "openssl", "s_server", "-accept", "127.0.0.1:0", "-rev",
          "-alpn", "h2,http/1.1", "-cert", d .. "/server.pem", "-key", d .. "/server.key" }, "^ACCEPT .*:(%d+)$")
        local c = assert(neap.connect("tls", "127.0.0.1", port,
          { ca = d .. "/ca.pem", alpn = { "x-neap", "http/1.1" }, timeout = 10 }))
        assert.equal("http/1.1", c:tls().alpn)
        c:write("ab\n")
        assert.equal("ba", c:read_line { timeout = 10 })
        c:close()
        -- a client offering none of them: OpenSSL 3's s_server refuses it
        local msg, code
        c, msg, code = neap.connect("tls", "127.0.0.1", port, { ca = d .. "/ca.pem", alpn = { "x-other" }, timeout = 10 })
        T.stop(p)
        assert.is_nil(c)
        assert.equal("ETLS", code)
        assert.equal("handshake failed: no application protocol", msg)
      end, 30)
    end)

    it("-Verify: a client certificate is sent and accepted; without one the server refuses", function()
      run(function()
        local p, port = T.spawn_port({ "openssl", "s_server", "-accept", "127.0.0.1:0", "-rev",
          "-Verify", "1", "-CAfile", d .. "/clientca.pem", "-verify_return_error",
          "-cert", d .. "/server.pem", "-key", d .. "/server.key" }, "^ACCEPT .*:(%d+)$")
        local c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10,
          cert = d .. "/client.pem", key = d .. "/client.key" }))
        c:write("cert\n")
        assert.equal("trec", c:read_line { timeout = 10 })
        c:close()
        -- without a certificate: TLS 1.3 reports it on the first read
        -- (the client's handshake is over before the server checks)
        local r, msg, code
        c, msg, code = neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10 })
        if c then
          c:write("x\n")
          r, msg, code = c:read_line { timeout = 10 }
          c:close()
          assert.is_nil(r)
        end
        assert.equal("ETLS", code)
        assert.matches("certificate required", msg)
        T.stop(p)
      end, 30)
    end)

    it("resumes a session: the second connect with opts.session says resumed = true", function()
      run(function()
        local p, port = T.spawn_port({ "openssl", "s_server", "-accept", "127.0.0.1:0", "-rev",
          "-cert", d .. "/server.pem", "-key", d .. "/server.key" }, "^ACCEPT .*:(%d+)$")
        local opts = { ca = d .. "/ca.pem", timeout = 10 }
        local c = assert(neap.connect("tls", "localhost", port, opts))
        c:write("one\n")
        assert.equal("eno", c:read_line { timeout = 10 })   -- (TLS 1.3 tickets come after the handshake)
        local session = c:tls().session
        assert.is_string(session)
        c:close()
        opts.session = session
        c = assert(neap.connect("tls", "localhost", port, opts))
        assert.is_true(c:tls().resumed)
        c:write("two\n")
        assert.equal("owt", c:read_line { timeout = 10 })
        c:close()
        T.stop(p)
      end, 30)
    end)
  end)

  describe("clients of neap's TLS server", function()
    it("openssl s_client verifies neap's certificate and gets its lines echoed", function()
      run(function()
        local srv, port = echo_server()
        local out = T.run({ "openssl", "s_client", "-connect", "127.0.0.1:" .. port, "-servername", "localhost",
          "-CAfile", d .. "/ca.pem", "-verify_return_error", "-verify_hostname", "localhost", "-ign_eof", "-quiet" },
          "one\ntwo\nquit\n")
        assert.truthy(out:find("verify return:1\necho: one\necho: two\n", 1, true), out)
        srv:close()
      end, 30)
    end)

    it("openssl s_client with a client certificate: its subject is in the server's s:tls().peer", function()
      run(function()
        local q = neap.queue()
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d,
          { ca = d .. "/clientca.pem", verify_peer = "require" })))
        srv:serve(function(c)
          q:put(c:tls().peer)
          c:write("hi\n")
          c:close()
        end)
        local _, port = srv:address()
        local out = T.run({ "openssl", "s_client", "-connect", "127.0.0.1:" .. port, "-CAfile", d .. "/ca.pem",
          "-cert", d .. "/client.pem", "-key", d .. "/client.key", "-ign_eof", "-quiet" })
        assert.truthy(out:find("\nhi\n", 1, true), out)
        local peer = q:get { timeout = 5 }
        assert.matches("CN=neap client", peer.subject)
        assert.matches("CN=neap client CA", peer.issuer)
        assert.same({ "client.test" }, peer.altnames)
        srv:close()
      end, 30)
    end)

    it("curl --cacert fetches an HTTP response, by name and by IP address (ALPN http/1.1)", function()
      run(function()
        local alpns = {}
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d, { alpn = { "http/1.1" } })))
        srv:serve(function(c)
          alpns[#alpns + 1] = c:tls().alpn
          local req = c:read_line { timeout = 10 }
          repeat local l = c:read_line { timeout = 10 } until l == "" or l == nil
          local body = "you asked for " .. req:match("^GET (%S+)") .. "\n"
          c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ", #body,
                  "\r\nConnection: close\r\n\r\n", body)
          c:shutdown()
          c:read_all { timeout = 10 }
          c:close()
        end)
        local _, port = srv:address()
        local out, code = T.run({ "curl", "-sS", "--cacert", d .. "/ca.pem", "https://localhost:" .. port .. "/x" })
        assert.equal(0, code, out)
        assert.equal("you asked for /x\n", out)
        out, code = T.run({ "curl", "-sS", "--cacert", d .. "/ca.pem", "https://127.0.0.1:" .. port .. "/ip" })
        assert.equal(0, code, out)
        assert.equal("you asked for /ip\n", out)
        -- and a curl that trusts another CA refuses
        out, code = T.run({ "curl", "-sS", "--cacert", d .. "/otherca.pem", "https://localhost:" .. port .. "/" })
        assert.equal(60, code, out)
        assert.same({ "http/1.1", "http/1.1" }, alpns)
        srv:close()
      end, 30)
    end)
  end)

  describe("Node's tls module", function()
    local node = T.have("node")

    it("as the server: a neap client echoes through it", function()
      if not node then pending("node is not installed") return end
      run(function()
        local js = string.format([[
          const tls = require('tls'), fs = require('fs');
          const s = tls.createServer({ cert: fs.readFileSync('%s/server.pem'), key: fs.readFileSync('%s/server.key'),
                                       ALPNProtocols: ['neap-test'] },
            c => c.pipe(c));
          s.listen(0, '127.0.0.1', () => console.log('port ' + s.address().port));
        ]], d, d)
        local p, port = T.spawn_port({ "node", "-e", js }, "^port (%d+)$")
        local c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", alpn = { "neap-test" }, timeout = 10 }))
        assert.equal("neap-test", c:tls().alpn)
        local big = string.rep("0123456789abcdef", 65536)   -- 1 MiB line
        c:write("small\n", big, "\n")
        assert.equal("small", c:read_line { timeout = 10 })
        assert.equal(big, c:read_line { timeout = 10 })
        c:close()
        T.stop(p)
      end, 30)
    end)

    it("as the client: node verifies neap's server, by name and by address", function()
      if not node then pending("node is not installed") return end
      run(function()
        local srv, port = echo_server()
        local js = string.format([[
          const tls = require('tls'), fs = require('fs');
          const c = tls.connect({ host: process.argv[1], port: %d, servername: process.argv[2] || undefined,
                                  ca: fs.readFileSync('%s/ca.pem') }, () => c.write('from node\n'));
          c.setEncoding('utf8');
          c.on('data', d => { process.stdout.write(d + c.getProtocol() + ' ' + c.authorized + '\n'); c.end(); });
          c.on('error', e => { console.log('error ' + e.code); process.exit(1); });
        ]], port, d)
        local out, code = T.run({ "node", "-e", js, "localhost", "localhost" })
        assert.equal(0, code, out)
        assert.matches("^echo: from node\nTLSv1%.3 true\n$", out)
        out, code = T.run({ "node", "-e", js, "127.0.0.1" })
        assert.equal(0, code, out)
        assert.matches("^echo: from node\n", out)
        srv:close()
      end, 30)
    end)
  end)

  describe("verification", function()
    -- connect to a neap server with certificate 'name' from 'host' with 'opts'
    local function try(name, host, opts)
      local srv = assert(neap.listen("tls", "127.0.0.1", 0,
        { cert = d .. "/" .. name .. ".pem", key = d .. "/" .. name .. ".key", handshake_timeout = 5 }))
      local reached = false
      srv:serve(function(c) reached = true c:write("ok\n") c:close() end)
      local _, port = srv:address()
      opts.timeout = 10
      local c, msg, code = neap.connect("tls", host, port, opts)
      local line
      if c then line = c:read_line { timeout = 10 } c:close() end
      neap.sleep(0.05)
      srv:close()
      return c, msg, code, reached, line
    end

    local cases = {
      { "a wrong CA", "server", "localhost", "otherca", "certificate verify failed: unable to get local issuer certificate" },
      { "a wrong host name", "other", "localhost", "ca", "certificate verify failed: hostname mismatch" },
      { "a servername the certificate lacks", "server", "127.0.0.1", "ca", "certificate verify failed: hostname mismatch", "nope.test" },
      { "an IP address the certificate lacks", "other", "127.0.0.1", "ca", "certificate verify failed: IP address mismatch" },
      { "an expired certificate", "expired", "localhost", "ca", "certificate verify failed: certificate has expired" },
      { "a self-signed certificate", "self", "localhost", "ca", "certificate verify failed: self-signed certificate" },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. " fails with its reason (nil, msg, \"ETLS\"); the server's handler is not reached", function()
        run(function()
          local c, msg, code, reached = try(case[2], case[3], { ca = d .. "/" .. case[4] .. ".pem", servername = case[6] })
          assert.is_nil(c)
          assert.equal(case[5], msg)
          assert.equal("ETLS", code)
          assert.is_false(reached)
        end)
      end)
      it(case[1] .. ": verify = false connects anyway", function()
        run(function()
          local c, msg, _, reached, line = try(case[2], case[3], { verify = false, servername = case[6] })
          assert.truthy(c, msg)
          assert.is_true(reached)
          assert.equal("ok", line)
        end)
      end)
    end

    it("the system store (no ca) does not trust the test CA", function()
      run(function()
        local c, msg, code = try("server", "localhost", {})
        assert.is_nil(c)
        assert.equal("ETLS", code)
        assert.matches("^certificate verify failed", msg)
      end)
    end)

    it("IP-address certificates verify: 127.0.0.1 and ::1", function()
      run(function()
        local c, msg = try("server", "127.0.0.1", { ca = d .. "/ca.pem" })
        assert.truthy(c, msg)
        local srv = neap.listen("tls", "::1", 0, T.server_opts(d))
        if not srv then return end   -- no IPv6 here
        local sni = "?"
        srv:serve(function(s) sni = s:tls().servername s:write("v6\n") s:close() end)
        local _, port = srv:address()
        local s = assert(neap.connect("tls", "::1", port, { ca = d .. "/ca.pem", timeout = 10 }))
        assert.equal("v6", s:read_line { timeout = 10 })
        assert.equal("::1", s:tls().servername)   -- the name checked
        assert.is_nil(sni)   -- an address is not sent as SNI
        s:close() srv:close()
      end)
    end)
  end)

  describe("ALPN, SNI, client certificates and sessions between neap peers", function()
    it("ALPN: the server's preference wins; no common protocol fails with its reason", function()
      run(function()
        local a, b = T.pair(d, { alpn = { "h2", "http/1.1" } }, { alpn = { "http/1.1", "h2" } })
        assert.equal("h2", a:tls().alpn)
        assert.equal("h2", b:tls().alpn)
        a:close() b:close()
        local srv, port = echo_server { alpn = { "h2" } }
        local c, msg, code = neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", alpn = { "spdy/3" }, timeout = 10 })
        assert.is_nil(c)
        assert.equal("ETLS", code)
        assert.equal("handshake failed: no application protocol", msg)
        srv:close()
      end)
    end)

    it("SNI picks the certificate by name (a wildcard too); other names get the default", function()
      run(function()
        local names = {}
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d,
          { sni = { ["other.test"] = { cert = d .. "/other.pem", key = d .. "/other.key" },
                    ["*.other.test"] = { cert = d .. "/other.pem", key = d .. "/other.key" } } })))
        srv:serve(function(c) names[#names + 1] = c:tls().servername or "-" c:write("x\n") c:close() end)
        local _, port = srv:address()
        for _, case in ipairs { { "other.test", "CN=other.test" }, { "a.other.test", "CN=other.test" },
                                { "localhost", "CN=localhost" } } do
          local c = assert(neap.connect("tls", "127.0.0.1", port,
            { ca = d .. "/ca.pem", servername = case[1], timeout = 10 }))
          assert.matches(case[2], c:tls().peer.subject)
          assert.equal("x", c:read_line { timeout = 10 })
          c:close()
        end
        assert.same({ "other.test", "a.other.test", "localhost" }, names)
        srv:close()
      end)
    end)

    it("a required client certificate: its subject reaches s:tls().peer; none, or a wrong one, is refused", function()
      run(function()
        local peers = {}
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d,
          { ca = d .. "/clientca.pem", verify_peer = "require", handshake_timeout = 5 })))
        srv:serve(function(c) peers[#peers + 1] = c:tls().peer.subject c:write("in\n") c:close() end)
        local _, port = srv:address()
        local c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10,
          cert = d .. "/client.pem", key = d .. "/client.key" }))
        assert.equal("in", c:read_line { timeout = 10 })
        c:close()
        assert.equal(1, #peers)
        assert.matches("CN=neap client", peers[1])
        -- no certificate, then one from a CA the server does not trust
        for _, extra in ipairs { {}, { cert = d .. "/server.pem", key = d .. "/server.key" } } do
          local o = { ca = d .. "/ca.pem", timeout = 10 }
          for k, v in pairs(extra) do o[k] = v end
          local s, msg, code = neap.connect("tls", "localhost", port, o)
          local r
          if s then r, msg, code = s:read_line { timeout = 10 } s:close() end
          assert.is_nil(r)
          assert.equal("ETLS", code)
          assert.truthy(msg:match("certificate required") or msg:match("unknown ca"), msg)
        end
        assert.equal(1, #peers)
        srv:close()
      end)
    end)

    it("optional client certificates: peer is nil without one", function()
      run(function()
        local a, b = T.pair(d, { ca = d .. "/clientca.pem", verify_peer = "optional" })
        assert.is_nil(a:tls().peer)
        a:close() b:close()
        a, b = T.pair(d, { ca = d .. "/clientca.pem", verify_peer = "optional" },
          { cert = d .. "/client.pem", key = d .. "/client.key" })
        assert.matches("CN=neap client", a:tls().peer.subject)
        a:close() b:close()
      end)
    end)

    it("session resumption between neap peers (min_version 1.3 and 1.2; both negotiate TLS 1.3)", function()
      run(function()
        for _, v in ipairs { "1.3", "1.2" } do
          local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d)))
          local done = neap.queue()
          srv:serve(function(c) c:write("hi\n") c:read_all { timeout = 10 } c:close() done:put(true) end)
          local _, port = srv:address()
          local opts = { ca = d .. "/ca.pem", timeout = 10, min_version = v }
          local c = assert(neap.connect("tls", "localhost", port, opts))
          assert.equal("hi", c:read_line { timeout = 10 })
          local info = c:tls()
          assert.is_false(info.resumed)
          c:close()
          opts.session = info.session
          c = assert(neap.connect("tls", "localhost", port, opts))
          assert.is_true(c:tls().resumed, v)
          assert.equal("hi", c:read_line { timeout = 10 })
          c:close()
          assert(done:get { timeout = 10 } and done:get { timeout = 10 })
          srv:close()
        end
      end)
    end)
  end)
end)
