package deliver

import (
	"encoding/json"
	"fmt"

	"mailroom/internal/config"
)

// explain prints why mail to opt.Explain goes where it goes: route's text
// form, or its JSON with --json. Routing is a pure function of the
// configuration, the accounts and the aliases, so this is exactly what a
// delivery would decide. The exit status is 0 whatever the decision (the
// answer was printed), 75 if the tables cannot be read.
func explain(cfg *config.Config, opt Options, sys System) int {
	tabs, err := loadTables(cfg)
	if err != nil {
		fmt.Fprintf(sys.Stderr, "4.3.5 mail system configuration error: %v\n", err)
		return ExitTempFail
	}
	res := tabs.router.Resolve(opt.Explain)
	if opt.JSON {
		enc := json.NewEncoder(sys.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = res.WriteText(sys.Stdout)
	}
	if err != nil {
		fmt.Fprintf(sys.Stderr, "4.3.0 writing the explanation: %v\n", err)
		return ExitTempFail
	}
	return ExitOK
}

// CheckTables loads the passwd-file and aliases file cfg names, as a
// delivery would (for --check-config).
func CheckTables(cfg *config.Config) error {
	_, err := loadTables(cfg)
	return err
}
