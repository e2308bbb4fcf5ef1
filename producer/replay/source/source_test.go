package source

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

func touch(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(ins []Input) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.Name)
	}
	return out
}

func TestResolveLocal(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{
		"a/2024-01.parquet", "a/2024-02.parquet", "a/sub/2024-03.csv.gz", "a/_SUCCESS", "a/.hidden.parquet",
		"a/_tmp/x.parquet", "a/notes.txt", "b/2023-01.csv", "c/2022-01.PARQUET", "empty/readme.md",
	} {
		touch(t, filepath.Join(dir, p), []byte("x"))
	}
	r := NewResolver(HDFSConfig{})
	defer r.Close()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{filepath.Join(dir, "a")}, []string{"2024-01.parquet", "2024-02.parquet", "2024-03.csv.gz"}},
		{[]string{filepath.Join(dir, "b/2023-01.csv"), filepath.Join(dir, "a/2024-02.parquet")}, []string{"2023-01.csv", "2024-02.parquet"}},
		{[]string{filepath.Join(dir, "*/*.parquet")}, []string{"2024-01.parquet", "2024-02.parquet"}},
		{[]string{filepath.Join(dir, "[bc]")}, []string{"2023-01.csv", "2022-01.PARQUET"}},
		{[]string{filepath.Join(dir, "a/*")}, []string{"2024-01.parquet", "2024-02.parquet", "2024-03.csv.gz"}},
		{[]string{filepath.Join(dir, "a/_tmp/*")}, []string{"x.parquet"}},
	} {
		ins, err := r.Resolve(t.Context(), tc.args)
		if err != nil {
			t.Errorf("Resolve(%v): %v", tc.args, err)
			continue
		}
		if got := names(ins); !slices.Equal(got, tc.want) {
			t.Errorf("Resolve(%v) = %v, want %v", tc.args, got, tc.want)
		}
		for _, in := range ins {
			if in.Size != 1 {
				t.Errorf("%s: size %d, want 1", in.Path, in.Size)
			}
		}
	}
	for _, tc := range []struct {
		args   []string
		substr string
	}{
		{nil, "no input files"},
		{[]string{filepath.Join(dir, "missing.parquet")}, "missing.parquet: stat"},
		{[]string{filepath.Join(dir, "nothing-*.parquet")}, "no file matches"},
		{[]string{filepath.Join(dir, "a/notes.txt")}, "unknown file type"},
		{[]string{filepath.Join(dir, "empty")}, "directory holds no .parquet"},
		{[]string{filepath.Join(dir, "a/2024-01.parquet"), filepath.Join(dir, "a/2024-01.parquet")}, "given twice"},
		{[]string{filepath.Join(dir, "a"), filepath.Join(dir, "a/2024-01.parquet")}, "given twice"},
		{[]string{filepath.Join(dir, "[")}, "bad glob"},
	} {
		_, err := r.Resolve(t.Context(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("Resolve(%v): got %v, want an error mentioning %q", tc.args, err, tc.substr)
		}
	}
	// Same base name in two directories: keys would collide.
	touch(t, filepath.Join(dir, "d/2024-01.parquet"), []byte("x"))
	_, err := r.Resolve(t.Context(), []string{filepath.Join(dir, "a/2024-01.parquet"), filepath.Join(dir, "d/2024-01.parquet")})
	if err == nil || !strings.Contains(err.Error(), "same base name") {
		t.Errorf("same base name: got %v", err)
	}
}

func TestOpenRealFiles(t *testing.T) {
	r := NewResolver(HDFSConfig{})
	defer r.Close()
	ins, err := r.Resolve(t.Context(), []string{filepath.Join(tlctest.DataDir(t), "green_tripdata_*.parquet")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != len(tlctest.ParquetFiles) {
		t.Fatalf("%d inputs, want %d", len(ins), len(tlctest.ParquetFiles))
	}
	for i, in := range ins {
		src, err := in.Open()
		if err != nil {
			t.Fatal(err)
		}
		if got := len(tlctest.ReadAll(t, src)); int64(got) != tlctest.ParquetFiles[i].Rows {
			t.Errorf("%s: %d rows, want %d", in.Name, got, tlctest.ParquetFiles[i].Rows)
		}
		src.Close()
	}
}

func TestHDFSConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg    HDFSConfig
		substr string // "" = valid
	}{
		{HDFSConfig{}, ""},
		{HDFSConfig{User: "hdfs"}, ""},
		{HDFSConfig{Kerberos: Kerberos{Keytab: "/etc/k.keytab", Principal: "etl@EXAMPLE.COM"}}, ""},
		{HDFSConfig{Kerberos: Kerberos{CCache: "/tmp/krb5cc_0"}}, ""},
		{HDFSConfig{Kerberos: Kerberos{Principal: "etl/host.example.com@EXAMPLE.COM", ServicePrincipal: "nn/_HOST@EXAMPLE.COM"}}, ""},
		{HDFSConfig{Kerberos: Kerberos{Keytab: "/etc/k.keytab"}}, "needs a principal"},
		{HDFSConfig{Kerberos: Kerberos{Keytab: "/k", CCache: "/c", Principal: "a@B"}}, "exclude each other"},
		{HDFSConfig{Kerberos: Kerberos{Principal: "etl"}}, `"etl": want primary[/instance]@REALM`},
		{HDFSConfig{Kerberos: Kerberos{Principal: "etl@"}}, "want primary"},
		{HDFSConfig{Kerberos: Kerberos{Principal: "a@b@c"}}, "want primary"},
		{HDFSConfig{Kerberos: Kerberos{ServicePrincipal: "nn/_HOST@A@B"}}, "service principal"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.substr == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.substr != "" && (err == nil || !strings.Contains(err.Error(), tc.substr)):
			t.Errorf("%+v: got %v, want an error mentioning %q", tc.cfg, err, tc.substr)
		}
	}
}

// TestKerberosErrorsNameTheFile checks that a Kerberos setup that cannot work fails before
// any connection, naming the file and the flag. (No KDC is available to test a login.)
func TestKerberosErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	krb5 := filepath.Join(dir, "krb5.conf")
	touch(t, krb5, []byte("[libdefaults]\n  default_realm = EXAMPLE.COM\n[realms]\n  EXAMPLE.COM = {\n    kdc = 127.0.0.1:1\n  }\n"))
	badKeytab := filepath.Join(dir, "bad.keytab")
	touch(t, badKeytab, []byte("not a keytab"))
	for _, tc := range []struct {
		k      Kerberos
		substr string
	}{
		{Kerberos{Config: filepath.Join(dir, "missing.conf"), CCache: "/x"}, "missing.conf (--kerberos-config)"},
		{Kerberos{Config: krb5, Keytab: badKeytab, Principal: "etl@EXAMPLE.COM"}, "bad.keytab (--hdfs-keytab)"},
		{Kerberos{Config: krb5, CCache: filepath.Join(dir, "nocache")}, "nocache (--hdfs-ccache; run kinit first)"},
		{Kerberos{Config: krb5, CCache: "KEYRING:persistent:0"}, "only FILE: caches"},
	} {
		cfg := HDFSConfig{Kerberos: tc.k, ConfDir: dir}
		touch(t, filepath.Join(dir, "core-site.xml"), []byte(`<configuration><property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:1</value></property></configuration>`))
		_, err := cfg.options("")
		if err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%+v: got %v, want an error mentioning %q", tc.k, err, tc.substr)
		}
	}
	// Kerberos required by the Hadoop configuration but no NameNode principal anywhere.
	conf := t.TempDir()
	touch(t, filepath.Join(conf, "core-site.xml"), []byte(`<configuration>
<property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:1</value></property>
<property><name>hadoop.security.authentication</name><value>kerberos</value></property>
</configuration>`))
	cfg := HDFSConfig{ConfDir: conf, Kerberos: Kerberos{Config: krb5, CCache: filepath.Join(dir, "nocache")}}
	if _, err := cfg.options(""); err == nil || !strings.Contains(err.Error(), "--hdfs-ccache") {
		t.Errorf("kerberos from core-site.xml: got %v", err)
	}
	// Simple authentication: the user and the NameNode from the configuration.
	simple := t.TempDir()
	touch(t, filepath.Join(simple, "core-site.xml"), []byte(`<configuration><property><name>fs.defaultFS</name><value>hdfs://nn.example:8020</value></property></configuration>`))
	opts, err := HDFSConfig{ConfDir: simple, User: "etl"}.options("")
	if err != nil || opts.User != "etl" || !slices.Equal(opts.Addresses, []string{"nn.example:8020"}) || opts.KerberosClient != nil {
		t.Errorf("simple auth options: %+v, %v", opts, err)
	}
	if _, err := (HDFSConfig{ConfDir: t.TempDir()}).options(""); err == nil || !strings.Contains(err.Error(), "no core-site.xml") {
		t.Errorf("empty conf dir: got %v", err)
	}
}
