package geoip_test

import (
	"os"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/geoip/gen"
)

func TestReloadSwapsChangedDatabasesAndKeepsOldOnBadFiles(t *testing.T) {
	dir := t.TempDir()
	c, a, err := gen.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := geoip.OpenReloading(c, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if g := r.Current().Lookup("102.89.0.1"); g == nil || g.Country != "NG" {
		t.Fatalf("before: %+v", g)
	}
	if changed, err := r.Reload(); changed || err != nil {
		t.Fatalf("unchanged files reloaded: %v %v", changed, err)
	}
	// A new City database in which 102.89.0.0/16 is Ghana.
	saved := gen.Networks
	defer func() { gen.Networks = saved }()
	gen.Networks = append([]gen.Network(nil), saved...)
	for i := range gen.Networks {
		if gen.Networks[i].Country == "NG" {
			gen.Networks[i].Country, gen.Networks[i].City = "GH", "Accra"
		}
	}
	other := t.TempDir()
	c2, _, err := gen.Write(other)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(c2)
	os.WriteFile(c, b, 0o644)
	future := time.Now().Add(time.Minute)
	os.Chtimes(c, future, future)
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("changed file not reloaded: %v %v", changed, err)
	}
	if g := r.Current().Lookup("102.89.0.1"); g == nil || g.Country != "GH" {
		t.Fatalf("after reload: %+v", g)
	}
	// A truncated file: the reload fails and the working databases stay.
	os.WriteFile(c, []byte("not a database"), 0o644)
	if _, err := r.Reload(); err == nil {
		t.Fatal("a broken database was accepted")
	}
	if g := r.Current().Lookup("102.89.0.1"); g == nil || g.Country != "GH" {
		t.Fatalf("after a failed reload: %+v", g)
	}
}
