package config

import (
	"errors"
	"fmt"
)

// Check holds c to the rules the parser applies to each value (absolute
// paths, valid lower-case domains, known enumerations, non-negative sizes,
// ...), so a Config changed by command-line flags is as safe as one read
// from the file. It reports every problem, joined, not just the first.
func (c *Config) Check() error {
	var errs []error
	for _, k := range keys {
		if err := checkKey(c, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkKey runs the key's own check, or else re-reads the key's printed value into a scratch Config, through
// the same set function the parser uses.
func checkKey(c *Config, k key) error {
	if k.check != nil {
		if err := k.check(c); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
		return nil
	}
	v := k.get(c)
	if err := printable(k, v); err != nil {
		return err
	}
	var scratch Config
	if err := k.set(&scratch, v); err != nil {
		return fmt.Errorf("%s: %w", k.name, err)
	}
	return nil
}
