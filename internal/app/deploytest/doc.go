// Package deploytest keeps deploy/ honest against the binary. It has no
// code, only tests: the metric names in the Prometheus rules and the Grafana
// dashboard are ones wiring.NewMetrics registers; compose and Kubernetes
// run only allowed, pinned images and real tokenwatch subcommands, flags and
// roles; and the config files they mount decode with internal/config like a
// role's start-up would. Nothing may import it.
package deploytest
