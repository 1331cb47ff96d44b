// Package kgo only pins the franz-go module whose own pkg/kgo tests compat/run runs
// (`go test github.com/twmb/franz-go/pkg/kgo`): it has no code of its own.
package kgo

import _ "github.com/twmb/franz-go/pkg/kgo"
