package remote

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"mailroom/deliver"
)

// Resolver is the part of *net.Resolver the transport uses; tests pass a
// fake.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// server is one host to try, in order: its name (what TLS verifies and
// the logs show) and its addresses.
type server struct {
	name  string
	addrs []net.IP
	port  int
}

// maxAddresses bounds the addresses tried for one destination in one
// attempt (Postfix: smtp_mx_address_limit 5; we allow a few more since
// IPv6 and IPv4 addresses of one host count separately).
const maxAddresses = 10

// resolve turns a next hop into the servers to try, in order. A failure
// result applies to every recipient of the destination. Names from the
// configuration (relay host, transport table) never fail permanently: a
// typo there must not bounce the whole queue.
func (t *Transport) resolve(ctx context.Context, hop Nexthop, configured bool) ([]server, *deliver.RemoteResult) {
	port := hop.Port
	if port == 0 {
		port = t.opts.Port
	}
	if ip := net.ParseIP(hop.Host); ip != nil {
		return []server{{name: hop.Host, addrs: []net.IP{ip}, port: port}}, nil
	}
	if hop.NoMX {
		addrs, err := t.lookupAddrs(ctx, hop.Host)
		if err != nil {
			return nil, dnsFailure(hop.Host, "A/AAAA", err, !configured)
		}
		return []server{{name: hop.Host, addrs: addrs, port: port}}, nil
	}
	mxs, err := t.res.LookupMX(ctx, hop.Host)
	if err != nil && !isNotFound(err) && len(mxs) == 0 {
		return nil, dnsFailure(hop.Host, "MX", err, false)
	}
	mxs = slices.DeleteFunc(mxs, func(mx *net.MX) bool { return mx == nil })
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		// RFC 7505 §3: a null MX says the domain accepts no mail; §4.3
		// recommends 5.1.10 for the bounce.
		return nil, &deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.1.10",
			Reason: fmt.Sprintf("domain %s accepts no mail (null MX, RFC 7505)", hop.Host)}
	}
	// RFC 7505 §3: a "." among other MX records is an error of the
	// domain's; ignore it and use the others.
	mxs = slices.DeleteFunc(mxs, func(mx *net.MX) bool { return mx.Host == "." })
	if len(mxs) == 0 {
		// RFC 5321 §5.1: no MX records, so the domain itself is the one
		// implicit MX (its A and AAAA records).
		addrs, err := t.lookupAddrs(ctx, hop.Host)
		if err != nil {
			return nil, dnsFailure(hop.Host, "MX and A/AAAA", err, !configured)
		}
		return []server{{name: hop.Host, addrs: addrs, port: port}}, nil
	}
	return t.mxServers(ctx, hop.Host, sortMX(mxs), port)
}

// mxServers resolves each MX host in order, up to maxAddresses addresses.
func (t *Transport) mxServers(ctx context.Context, domain string, mxs []*net.MX, port int) ([]server, *deliver.RemoteResult) {
	var servers []server
	var lastErr error
	n := 0
	for _, mx := range mxs {
		if n >= maxAddresses {
			break
		}
		name := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
		addrs, err := t.lookupAddrs(ctx, name)
		if err != nil {
			lastErr = err
			continue
		}
		if len(addrs) > maxAddresses-n {
			addrs = addrs[:maxAddresses-n]
		}
		n += len(addrs)
		servers = append(servers, server{name: name, addrs: addrs, port: port})
	}
	if len(servers) == 0 {
		// The domain exists and names MX hosts that do not resolve (yet):
		// temporary, as Postfix defers it.
		return nil, &deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.3",
			Reason: fmt.Sprintf("no MX host of %s has an address: %v", domain, lastErr)}
	}
	return servers, nil
}

// sortMX orders MX records by preference, random among equals (RFC 5321
// §5.1: "the sender-SMTP MUST randomize them to spread the load").
func sortMX(mxs []*net.MX) []*net.MX {
	out := slices.Clone(mxs)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	slices.SortStableFunc(out, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return out
}

// lookupAddrs returns a host's usable IPv6 and IPv4 addresses in the
// resolver's order.
func (t *Transport) lookupAddrs(ctx context.Context, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	ias, err := t.res.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, ia := range ias {
		if ia.IP == nil || ia.IP.IsUnspecified() || ia.IP.IsMulticast() {
			continue
		}
		ips = append(ips, ia.IP)
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no usable address", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// dnsFailure classifies a failed lookup: a name that does not exist is
// permanent when permanentIfMissing (the recipient's domain: RFC 3463
// 5.1.2, bad destination system address), anything else temporary
// (4.4.3, directory server failure).
func dnsFailure(name, what string, err error, permanentIfMissing bool) *deliver.RemoteResult {
	if isNotFound(err) && permanentIfMissing {
		return &deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.1.2",
			Reason: fmt.Sprintf("domain %s not found (no %s records)", name, what)}
	}
	if isNotFound(err) {
		return &deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.4",
			Reason: fmt.Sprintf("host %s not found (no %s records)", name, what)}
	}
	return &deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.3",
		Reason: fmt.Sprintf("DNS lookup of %s (%s) failed: %v", name, what, err)}
}
