package source

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/krb5test"
)

// hdfsConfDir writes a core-site.xml with a NameNode and the given extra core-site and
// hdfs-site properties (name, value pairs) and returns its directory.
func hdfsConfDir(t *testing.T, core, hdfsSite []string) string {
	t.Helper()
	dir := t.TempDir()
	site := func(props []string) []byte {
		b := []byte("<configuration>\n")
		for i := 0; i+1 < len(props); i += 2 {
			b = append(b, "<property><name>"+props[i]+"</name><value>"+props[i+1]+"</value></property>\n"...)
		}
		return append(b, "</configuration>\n"...)
	}
	touch(t, filepath.Join(dir, "core-site.xml"), site(append([]string{"fs.defaultFS", "hdfs://127.0.0.1:1"}, core...)))
	touch(t, filepath.Join(dir, "hdfs-site.xml"), site(hdfsSite))
	return dir
}

// TestOptionsDataTransferProtection: the client's data transfer protection is the cluster's
// (hdfs-site.xml), as the DataNodes demand it; the highest level of a list wins.
func TestOptionsDataTransferProtection(t *testing.T) {
	for _, tc := range []struct {
		hdfsSite []string
		want     string
	}{
		{nil, ""},
		{[]string{"dfs.data.transfer.protection", "authentication"}, "authentication"},
		{[]string{"dfs.data.transfer.protection", "integrity"}, "integrity"},
		{[]string{"dfs.data.transfer.protection", "privacy"}, "privacy"},
		{[]string{"dfs.data.transfer.protection", "authentication,privacy"}, "privacy"},
		{[]string{"dfs.encrypt.data.transfer", "true"}, "privacy"},
	} {
		opts, err := HDFSConfig{ConfDir: hdfsConfDir(t, nil, tc.hdfsSite), User: "etl"}.options("")
		if err != nil {
			t.Fatal(err)
		}
		if opts.DataTransferProtection != tc.want {
			t.Errorf("%v: DataTransferProtection %q, want %q", tc.hdfsSite, opts.DataTransferProtection, tc.want)
		}
		if opts.DatanodeDialFunc != nil {
			t.Errorf("%v: simple authentication got a DataNode dialer", tc.hdfsSite)
		}
	}
}

// TestOptionsKerberosDataTransferProtection logs in at a real KDC (skipped without one) and
// checks the options of a Kerberized cluster: the data transfer protection and the NameNode
// principal from the configuration, the login replacing the placeholder client, and the
// explaining dialer only when the configuration sets no protection.
func TestOptionsKerberosDataTransferProtection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a KDC")
	}
	kdc := krb5test.Start(t, "SOURCE.TEST") // skips when krb5-kdc is not installed
	kdc.AddService(t, "etl")
	login := Kerberos{Principal: "etl@SOURCE.TEST", Keytab: kdc.Keytab(t, "etl"), Config: kdc.Config}
	core := []string{"hadoop.security.authentication", "kerberos", "dfs.namenode.kerberos.principal", "nn/127.0.0.1@SOURCE.TEST"}
	for _, protection := range []string{"authentication", "integrity", "privacy", ""} {
		var hdfsSite []string
		if protection != "" {
			hdfsSite = []string{"dfs.data.transfer.protection", protection}
		}
		opts, err := HDFSConfig{ConfDir: hdfsConfDir(t, core, hdfsSite), Kerberos: login}.options("")
		if err != nil {
			t.Fatal(err)
		}
		if opts.DataTransferProtection != protection {
			t.Errorf("DataTransferProtection %q, want %q from hdfs-site.xml", opts.DataTransferProtection, protection)
		}
		if opts.KerberosClient == nil || opts.KerberosClient.Credentials.UserName() != "etl" {
			t.Errorf("%q: Kerberos client %+v, want the login of etl", protection, opts.KerberosClient)
		}
		if opts.KerberosServicePrincipleName != "nn/127.0.0.1" {
			t.Errorf("%q: NameNode SPN %q", protection, opts.KerberosServicePrincipleName)
		}
		if hint := opts.DatanodeDialFunc != nil; hint != (protection == "") {
			t.Errorf("%q: explaining DataNode dialer set: %v", protection, hint)
		}
		opts.KerberosClient.Destroy()
	}
}

// TestDataTransferHintDialer: a DataNode that resets the connection before answering (what a
// DataNode demanding SASL does to a client that skips it) gives an error that says what to
// configure and still matches ECONNRESET; EOF and resets after data pass unchanged.
func TestDataTransferHintDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Each connection gets the behaviour named by the first byte the client sends.
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c *net.TCPConn) {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				switch b[0] {
				case 'r': // reset at once (SO_LINGER 0: close sends RST)
					_ = c.SetLinger(0)
				case 'd': // data, the client's reply, then a reset
					_, _ = c.Write([]byte("ok"))
					_, _ = io.ReadFull(c, b)
					_ = c.SetLinger(0)
				case 'e': // orderly close: EOF
				}
			}(conn.(*net.TCPConn))
		}
	}()
	dial := dataTransferHintDialer(nil)
	exchange := func(mode byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := dial(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte{mode}); err != nil {
			return err
		}
		if mode == 'd' {
			// Read the data before the reset can arrive, then let the server reset.
			if _, err := io.ReadFull(conn, make([]byte, 2)); err != nil {
				return err
			}
			if _, err := conn.Write([]byte{'z'}); err != nil {
				return err
			}
		}
		_, err = io.ReadAll(conn)
		if err == nil {
			err = io.EOF // ReadAll hides it
		}
		return err
	}

	err = exchange('r')
	var hint *errDataTransferReset
	if !errors.As(err, &hint) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reset before any data: got %v (%T), want errDataTransferReset wrapping ECONNRESET", err, err)
	}
	t.Logf("reset before any data: %v", err)
	if err := exchange('d'); errors.As(err, &hint) || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset after data: got %v, want the plain ECONNRESET", err)
	}
	if err := exchange('e'); err != io.EOF {
		t.Errorf("orderly close: got %v, want io.EOF itself", err)
	}
}
