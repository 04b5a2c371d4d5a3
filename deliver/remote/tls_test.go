package remote

import (
	"slices"
	"strings"
	"testing"

	"mailroom/deliver"
)

func TestSTARTTLSLevels(t *testing.T) {
	srvTLS, roots := testCert(t, "mx1.example.net")
	_, otherRoots := testCert(t, "mx1.example.net")
	tests := []struct {
		name     string
		level    TLSLevel
		offerTLS bool
		trust    bool // the client trusts the server's certificate
		outcome  deliver.RemoteOutcome
		status   string
		wantTLS  bool
		log      string
	}{
		{"may, verified", TLSMay, true, true, sent, "2.0.0", true, "tls=verified"},
		{"may, unverified", TLSMay, true, false, sent, "2.0.0", true, "tls=unverified"},
		{"may, not offered", TLSMay, false, true, sent, "2.0.0", false, "tls=none"},
		{"none never asks", TLSNone, true, true, sent, "2.0.0", false, "tls=none"},
		{"encrypt, unverified", TLSEncrypt, true, false, sent, "2.0.0", true, "tls=unverified"},
		{"encrypt, not offered", TLSEncrypt, false, true, temp, "4.7.4", false, "status=failed"},
		{"verify, verified", TLSVerify, true, true, sent, "2.0.0", true, "tls=verified"},
		{"verify, untrusted certificate", TLSVerify, true, false, temp, "4.7.5", false, "status=failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			if tc.offerTLS {
				srv.tlsCfg = srvTLS
			}
			srv.start()
			opts := Options{TLSLevel: tc.level, RootCAs: otherRoots}
			if tc.trust {
				opts.RootCAs = roots
			}
			h := newHarness(t, opts)
			exampleNet(h)
			h.route("192.0.2.1:25", srv)
			res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))
			wantResult(t, res[0], tc.outcome, tc.status)
			msgs := srv.messages()
			if tc.outcome == sent && (len(msgs) != 1 || msgs[0].tls != tc.wantTLS || msgs[0].data != testBody) {
				t.Errorf("server got %+v, want one message, TLS %v", msgs, tc.wantTLS)
			}
			if tc.outcome != sent && len(msgs) != 0 {
				t.Errorf("sent without the required TLS: %+v", msgs)
			}
			if !strings.Contains(h.logs.String(), tc.log) {
				t.Errorf("logs lack %q:\n%s", tc.log, h.logs.String())
			}
			if tc.wantTLS && !slices.Contains(srv.commands(), "1: EHLO client.test") {
				t.Errorf("no EHLO after TLS: %q", srv.commands())
			}
		})
	}
}

// A TLS handshake that fails at level may is retried in plaintext on a
// new connection; at level encrypt the message waits.
func TestTLSFailureFallback(t *testing.T) {
	srvTLS, _ := testCert(t, "mx1.example.net")
	for _, level := range []TLSLevel{TLSMay, TLSEncrypt} {
		srv := newFakeServer(t)
		srv.tlsCfg, srv.breakTLS = srvTLS, true
		srv.start()
		h := newHarness(t, Options{TLSLevel: level})
		exampleNet(h)
		h.route("192.0.2.1:25", srv)
		res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))
		if level == TLSEncrypt {
			wantResult(t, res[0], temp, "4.7.5")
			if len(srv.messages()) != 0 {
				t.Error("encrypt: sent in plaintext")
			}
			continue
		}
		wantResult(t, res[0], sent, "2.0.0")
		msgs := srv.messages()
		if len(msgs) != 1 || msgs[0].tls || msgs[0].conn != 2 {
			t.Errorf("may: got %+v, want the message in plaintext on a second connection", msgs)
		}
		if !strings.Contains(h.logs.String(), "retrying without TLS") {
			t.Errorf("fallback not logged:\n%s", h.logs.String())
		}
	}
}

func TestAuthOnlyOverTLS(t *testing.T) {
	srvTLS, roots := testCert(t, "relay.test")
	hop := Nexthop{Host: "relay.test", Port: 587, NoMX: true}
	tab, err := ParseTable(strings.NewReader("other.test [192.0.2.70]\n"), "transport")
	if err != nil {
		t.Fatal(err)
	}
	for _, withTLS := range []bool{true, false} {
		srv := newFakeServer(t)
		srv.ext = append(srv.ext, "AUTH PLAIN LOGIN")
		if withTLS {
			srv.tlsCfg = srvTLS
		}
		srv.start()
		h := newHarness(t, Options{RelayHost: &hop, RelayUser: "user@relay.test", RelayPassword: "s3cret", RootCAs: roots, Table: tab})
		h.res.ip["relay.test"] = ips("192.0.2.40")
		h.route("192.0.2.40:587", srv)
		h.route("192.0.2.70:25", srv)
		res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net", "c@other.test"))
		cmds := strings.Join(srv.commands(), "\n")
		if !withTLS {
			wantResult(t, res[0], temp, "4.7.0")
			if strings.Contains(cmds, "AUTH") {
				t.Errorf("AUTH sent without TLS:\n%s", cmds)
			}
		} else {
			wantResult(t, res[0], sent, "2.0.0")
		}
		// The transport-table destination is not the relay: no AUTH there.
		wantResult(t, res[1], sent, "2.0.0")
		var relayed, other []fakeMsg
		for _, m := range srv.messages() {
			if strings.Contains(strings.Join(m.rcpts, ""), "other.test") {
				other = append(other, m)
			} else {
				relayed = append(relayed, m)
			}
		}
		if len(other) != 1 || other[0].auth != "" {
			t.Errorf("transport-table message %+v, want one without AUTH", other)
		}
		if withTLS && (len(relayed) != 1 || relayed[0].auth != "user@relay.test:s3cret" || !relayed[0].tls) {
			t.Errorf("relayed %+v, want one authenticated over TLS", relayed)
		}
	}
}
