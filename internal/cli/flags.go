package cli

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/keymesh/keymesh/internal/enclave"
)

// measurementsValue is the one type of --measurement in every command: a
// repeatable flag (no comma splitting) of build measurements, each
// checked to be 64 hex digits when the flag is parsed, so a typo is
// refused before anything is sent.
type measurementsValue struct{ list *[]string }

func (v measurementsValue) Set(s string) error {
	if _, err := enclave.ParseMeasurement(s); err != nil {
		return err
	}
	*v.list = append(*v.list, s)
	return nil
}

func (v measurementsValue) String() string {
	if v.list == nil {
		return ""
	}
	return strings.Join(*v.list, ",")
}

func (measurementsValue) Type() string { return "measurement" }

// measurementFlag registers --measurement into dst.
func measurementFlag(fs *pflag.FlagSet, dst *[]string, usage string) {
	fs.Var(measurementsValue{dst}, "measurement", usage+" (64 hex digits; repeatable)")
}
