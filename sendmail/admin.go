package sendmail

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"mailroom/internal/account"
	"mailroom/internal/alias"
	"mailroom/internal/route"
	"mailroom/spool"
)

// newaliases is -bi: mailroom reads the aliases file as text whenever
// deliver or smtpd loads its tables, so there is no database to build
// (Debian Policy §11.6 still wants the command). It checks the file, so
// that an admin who runs it after an edit learns of a mistake at once,
// with file:line. 0 when the file is good (or absent: no aliases), 65
// when it is not, 75 when it cannot be read as this user.
func (r *run) newaliases() int {
	path := r.cfg.AliasesFile
	t, err := alias.Load(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return r.fail(ExitTempFail, "cannot read %s: %v", path, err)
	case err != nil:
		return r.fail(ExitDataErr, "%v", err)
	}
	fmt.Fprintf(r.sys.Stdout, "%s: %d aliases; no database to build (deliver and smtpd read the file itself)\n", path, t.Len())
	return ExitOK
}

// verify is -bv: the routing decision for each address, the same text
// (route.Result.WriteText) as deliver --explain, nothing sent. Exit 0 when
// every address is deliverable, 67 when one is unknown, else 77 when one
// is refused (deliver's statuses for the same outcomes).
func (r *run) verify() int {
	users, err := account.Load(r.cfg.PasswdFile, r.cfg.MailRoot)
	if err != nil {
		return r.fail(ExitTempFail, "4.3.5 cannot read the accounts: %v", err)
	}
	aliases, err := alias.Load(r.cfg.AliasesFile)
	if err != nil {
		return r.fail(ExitTempFail, "4.3.5 cannot read the aliases: %v", err)
	}
	router := route.New(r.cfg, users, aliases)
	status := ExitOK
	var results []route.Result
	for _, addr := range r.qualifyAll(r.opt.Recipients) {
		res := router.Resolve(addr)
		status = worse(status, verdict(res))
		if r.opt.JSON {
			results = append(results, res)
			continue
		}
		if err := res.WriteText(r.sys.Stdout); err != nil {
			return r.fail(ExitTempFail, "writing the result: %v", err)
		}
	}
	if r.opt.JSON {
		enc := json.NewEncoder(r.sys.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return r.fail(ExitTempFail, "writing the result: %v", err)
		}
	}
	return status
}

// verdict is the exit status for one routing decision.
func verdict(res route.Result) int {
	if len(res.Targets) == 0 {
		return ExitNoUser
	}
	status := ExitOK
	for _, t := range res.Targets {
		switch t.Kind {
		case route.Unknown:
			status = worse(status, ExitNoUser)
		case route.Refused:
			status = worse(status, ExitNoPerm)
		}
	}
	return status
}

// worse keeps the more serious status: 67 over 77 over 0.
func worse(a, b int) int {
	rank := func(s int) int {
		switch s {
		case ExitNoUser:
			return 2
		case ExitNoPerm:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// runQueue is -q, -q30m, -qRsite: the queue daemon (deliver --queue)
// watches the spool with inotify and retries on its own schedule, so there
// is no queue run to start. -q checks that the spool is there, silently
// unless -v (old cron jobs run "sendmail -q" and should not mail output),
// as nullmailer and msmtp accept -q.
func (r *run) runQueue() int {
	sp, err := spool.Open(r.cfg.SpoolDir)
	if err != nil {
		return r.fail(ExitTempFail, "cannot open the spool: %v", err)
	}
	if r.opt.Verbose > 0 {
		fmt.Fprintf(r.sys.Stderr, "%s: spool %s is there; the queue daemon (deliver --queue) delivers continuously, no queue run to start\n", r.prog, sp.Dir())
	}
	return ExitOK
}
