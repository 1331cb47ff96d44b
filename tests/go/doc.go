// Package compat holds compatibility tests that run the franz-go client (kgo, kadm) against a
// Sluice broker binary. See broker_test.go for how the broker is started; run with ./run.
package compat
