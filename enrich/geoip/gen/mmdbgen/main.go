// Command mmdbgen writes the test GeoIP databases: go run ./enrich/geoip/gen/mmdbgen -out testdata/geoip
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tokenwatch/tokenwatch/enrich/geoip/gen"
)

func main() {
	out := flag.String("out", "testdata/geoip", "directory to write test-city.mmdb and test-asn.mmdb into")
	flag.Parse()
	c, a, err := gen.Write(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmdbgen:", err)
		os.Exit(1)
	}
	fmt.Println(c, a)
}
