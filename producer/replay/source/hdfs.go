package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strings"
	"syscall"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// HDFSConfig configures access to HDFS for hdfs:// inputs.
type HDFSConfig struct {
	// ConfDir is the Hadoop configuration directory (core-site.xml, hdfs-site.xml): NameNode
	// addresses for hdfs:///path, hadoop.security.authentication,
	// dfs.namenode.kerberos.principal, data transfer protection. Default $HADOOP_CONF_DIR,
	// then $HADOOP_HOME/conf; none is fine for hdfs://host:port URLs without Kerberos.
	ConfDir string
	// User is the HDFS user with simple authentication. Default $HADOOP_USER_NAME, else the
	// OS user. Ignored with Kerberos, where the principal is the user.
	User string
	// Kerberos is used when the Hadoop configuration says hadoop.security.authentication =
	// kerberos, or when any of its credential fields is set.
	Kerberos Kerberos
}

// Kerberos holds the Kerberos login for a kerberized HDFS (through jcmturner/gokrb5): a keytab
// with its principal, or a ticket cache from kinit.
type Kerberos struct {
	// Principal is the client principal, primary[/instance]@REALM. Required with Keytab; with
	// a ticket cache it is optional and, when set, must be the cache's principal.
	Principal string
	// Keytab is a keytab file holding Principal's key (what kinit -kt uses).
	Keytab string
	// CCache is a ticket cache file. Default, when Kerberos is on and no Keytab is set:
	// $KRB5CCNAME (FILE: caches only), else /tmp/krb5cc_<uid>.
	CCache string
	// Config is the krb5.conf file. Default $KRB5_CONFIG, else /etc/krb5.conf.
	Config string
	// ServicePrincipal is the NameNode's principal, e.g. nn/_HOST@EXAMPLE.COM (_HOST is
	// replaced by the NameNode's host). Default dfs.namenode.kerberos.principal.
	ServicePrincipal string
}

// Requested reports whether any credential setting asks for Kerberos.
func (k Kerberos) Requested() bool { return k.Principal != "" || k.Keytab != "" || k.CCache != "" }

// Validate checks the combination and format of the settings (not the files: those are read
// when the first hdfs:// input is resolved, and errors then name the file).
func (c HDFSConfig) Validate() error {
	k := c.Kerberos
	if k.Keytab != "" && k.CCache != "" {
		return errors.New("hdfs kerberos: keytab (--hdfs-keytab) and ticket cache (--hdfs-ccache) exclude each other")
	}
	if k.Keytab != "" && k.Principal == "" {
		return errors.New("hdfs kerberos: keytab (--hdfs-keytab) needs a principal (--hdfs-principal user@REALM)")
	}
	if k.Principal != "" {
		if _, _, err := splitPrincipal(k.Principal); err != nil {
			return fmt.Errorf("hdfs kerberos: principal (--hdfs-principal) %w", err)
		}
	}
	if k.ServicePrincipal != "" && (strings.Count(k.ServicePrincipal, "@") > 1 ||
		strings.HasPrefix(k.ServicePrincipal, "@") || strings.ContainsAny(k.ServicePrincipal, " \t")) {
		return fmt.Errorf("hdfs kerberos: service principal (--hdfs-service-principal) %q: want service/host[@REALM]", k.ServicePrincipal)
	}
	return nil
}

// splitPrincipal splits user@REALM.
func splitPrincipal(p string) (name, realm string, err error) {
	i := strings.LastIndexByte(p, '@')
	if i <= 0 || i == len(p)-1 || strings.Count(p, "@") != 1 || strings.ContainsAny(p, " \t") {
		return "", "", fmt.Errorf("%q: want primary[/instance]@REALM", p)
	}
	return p[:i], p[i+1:], nil
}

func (c HDFSConfig) loadConf() (hadoopconf.HadoopConf, error) {
	if c.ConfDir != "" {
		conf, err := hadoopconf.Load(c.ConfDir)
		if err != nil {
			return nil, fmt.Errorf("hadoop configuration in %s: %w", c.ConfDir, err)
		}
		if conf == nil {
			return nil, fmt.Errorf("hadoop configuration: no core-site.xml or hdfs-site.xml in %s", c.ConfDir)
		}
		return conf, nil
	}
	conf, err := hadoopconf.LoadFromEnvironment()
	if err != nil {
		return nil, fmt.Errorf("hadoop configuration ($HADOOP_CONF_DIR / $HADOOP_HOME): %w", err)
	}
	return conf, nil
}

// options builds the client options for the NameNode address list host ("" = from the
// Hadoop configuration).
func (c HDFSConfig) options(host string) (hdfs.ClientOptions, error) {
	if err := c.Validate(); err != nil {
		return hdfs.ClientOptions{}, err
	}
	conf, err := c.loadConf()
	if err != nil {
		return hdfs.ClientOptions{}, err
	}
	opts := hdfs.ClientOptionsFromConf(conf)
	if host != "" {
		opts.Addresses = strings.Split(host, ",")
	}
	if len(opts.Addresses) == 0 {
		return opts, errors.New("no NameNode address: use hdfs://host:port/path or set fs.defaultFS in $HADOOP_CONF_DIR")
	}
	if opts.KerberosClient == nil && !c.Kerberos.Requested() {
		opts.User = c.User
		if opts.User == "" {
			opts.User = os.Getenv("HADOOP_USER_NAME")
		}
		if opts.User == "" {
			u, err := user.Current()
			if err != nil {
				return opts, fmt.Errorf("hdfs user: %w (set --hdfs-user or $HADOOP_USER_NAME)", err)
			}
			opts.User = u.Username
		}
		opts.KerberosClient = nil
		return opts, nil
	}
	kc, err := c.Kerberos.client()
	if err != nil {
		return opts, err
	}
	opts.KerberosClient = kc
	if spn := c.Kerberos.ServicePrincipal; spn != "" {
		opts.KerberosServicePrincipleName = strings.Split(spn, "@")[0]
	}
	if opts.KerberosServicePrincipleName == "" {
		if auth := conf["hadoop.security.authentication"]; len(conf) > 0 && !strings.EqualFold(auth, "kerberos") {
			// The reverse mistake: Kerberos credentials for a cluster whose configuration
			// says it does not use Kerberos.
			return opts, fmt.Errorf("hdfs kerberos: Kerberos credentials are given (--hdfs-principal, --hdfs-keytab or --hdfs-ccache), "+
				"but the cluster's configuration says hadoop.security.authentication=%s: drop them for a cluster without Kerberos, "+
				"or point --hadoop-conf-dir at the Kerberized cluster's configuration (or set --hdfs-service-principal)", cmp.Or(auth, "simple"))
		}
		return opts, errors.New("hdfs kerberos: no NameNode principal: set --hdfs-service-principal or dfs.namenode.kerberos.principal")
	}
	// opts.DataTransferProtection comes from the Hadoop configuration (dfs.data.transfer.protection,
	// or privacy with dfs.encrypt.data.transfer). Without it the client skips the SASL handshake
	// with the DataNodes, which only DataNodes on privileged ports (started as root) accept; the
	// usual Kerberized DataNode resets the connection. Say so when that happens.
	if opts.DataTransferProtection == "" {
		opts.DatanodeDialFunc = dataTransferHintDialer(opts.DatanodeDialFunc)
	}
	return opts, nil
}

// dataTransferHintDialer wraps dial (nil: a plain net.Dialer) so that a DataNode connection
// reset before it sent a single byte returns an errDataTransferReset.
func dataTransferHintDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &hintConn{Conn: conn, addr: addr}, nil
	}
}

// hintConn is a DataNode connection of a Kerberos client without data transfer protection.
type hintConn struct {
	net.Conn
	addr     string
	received bool
}

func (c *hintConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.received = true
	}
	if err != nil && !c.received && errors.Is(err, syscall.ECONNRESET) {
		err = &errDataTransferReset{addr: c.addr, err: err}
	}
	return n, err
}

// errDataTransferReset: a DataNode reset the connection of a Kerberos client that skipped the
// SASL data transfer handshake. It wraps the network error (errors.Is ECONNRESET still holds).
type errDataTransferReset struct {
	addr string
	err  error
}

func (e *errDataTransferReset) Error() string {
	return fmt.Sprintf("datanode %s reset the connection (%v): a Kerberized DataNode on an unprivileged port "+
		"requires SASL data transfer protection, and the Hadoop configuration given sets none: give the "+
		"cluster's hdfs-site.xml (dfs.data.transfer.protection) with --hadoop-conf-dir or $HADOOP_CONF_DIR",
		e.addr, e.err)
}

func (e *errDataTransferReset) Unwrap() error { return e.err }

// client logs in with the keytab or loads the ticket cache.
func (k Kerberos) client() (*krbclient.Client, error) {
	cfgPath := k.Config
	if cfgPath == "" {
		cfgPath = os.Getenv("KRB5_CONFIG")
	}
	if cfgPath == "" {
		cfgPath = "/etc/krb5.conf"
	}
	cfg, err := krbconfig.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("hdfs kerberos: krb5.conf %s (--kerberos-config): %w", cfgPath, err)
	}
	if k.Keytab != "" {
		name, realm, err := splitPrincipal(k.Principal)
		if err != nil {
			return nil, fmt.Errorf("hdfs kerberos: principal %w", err)
		}
		kt, err := keytab.Load(k.Keytab)
		if err != nil {
			return nil, fmt.Errorf("hdfs kerberos: keytab %s (--hdfs-keytab): %w", k.Keytab, err)
		}
		cl := krbclient.NewWithKeytab(name, realm, kt, cfg, krbclient.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			return nil, fmt.Errorf("hdfs kerberos: login as %s with keytab %s: %w", k.Principal, k.Keytab, err)
		}
		return cl, nil
	}
	path, err := ccachePath(k.CCache)
	if err != nil {
		return nil, err
	}
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		return nil, fmt.Errorf("hdfs kerberos: ticket cache %s (--hdfs-ccache; run kinit first): %w", path, err)
	}
	if k.Principal != "" {
		got := cc.GetClientPrincipalName().PrincipalNameString() + "@" + cc.GetClientRealm()
		if got != k.Principal {
			return nil, fmt.Errorf("hdfs kerberos: ticket cache %s holds %s, not --hdfs-principal %s", path, got, k.Principal)
		}
	}
	cl, err := krbclient.NewFromCCache(cc, cfg, krbclient.DisablePAFXFAST(true))
	if err != nil {
		return nil, fmt.Errorf("hdfs kerberos: ticket cache %s: %w", path, err)
	}
	return cl, nil
}

func ccachePath(p string) (string, error) {
	if p == "" {
		p = os.Getenv("KRB5CCNAME")
	}
	if p == "" {
		u, err := user.Current()
		if err != nil {
			return "", fmt.Errorf("hdfs kerberos: default ticket cache: %w", err)
		}
		return "/tmp/krb5cc_" + u.Uid, nil
	}
	if rest, ok := strings.CutPrefix(p, "FILE:"); ok {
		return rest, nil
	}
	if strings.Contains(p, ":") {
		return "", fmt.Errorf("hdfs kerberos: ticket cache %q: only FILE: caches are supported", p)
	}
	return p, nil
}

// client returns the (cached) HDFS client for host.
func (r *Resolver) client(host string) (*hdfs.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[host]; c != nil {
		return c, nil
	}
	c, err := r.hdfsCfg.NewClient(host)
	if err != nil {
		return nil, err
	}
	r.clients[host] = c
	return c, nil
}

// NewClient connects to the NameNode(s) host (a comma-separated address list; "" = from the
// Hadoop configuration) the way hdfs:// inputs are read: the Hadoop configuration's options
// (data transfer protection, NameNode principal, ...), the user or the Kerberos login. The
// caller closes the client.
func (c HDFSConfig) NewClient(host string) (*hdfs.Client, error) {
	opts, err := c.options(host)
	if err != nil {
		return nil, err
	}
	client, err := hdfs.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("hdfs client for %s: %w", strings.Join(opts.Addresses, ","), err)
	}
	if opts.KerberosClient == nil {
		if err := checkSimpleAuth(client, opts); err != nil {
			client.Close()
			return nil, err
		}
	}
	return client, nil
}

// checkSimpleAuth makes one cheap call (stat /) with simple authentication, to tell a
// Kerberized cluster apart. Such a NameNode answers the first call of a client without SASL
// with a FATAL reply on the SASL call id ("SIMPLE authentication is not enabled"), which
// colinmarc/hdfs reports only as "unexpected sequence number", and later calls as whatever
// the closed connection gives. Any other error is left to the calls that follow.
func checkSimpleAuth(client *hdfs.Client, opts hdfs.ClientOptions) error {
	_, err := client.Stat("/")
	if err == nil || !strings.Contains(err.Error(), "unexpected sequence number") {
		return nil
	}
	return fmt.Errorf("hdfs namenode %s refused simple authentication as user %q (%w): the cluster "+
		"requires Kerberos: give --hdfs-principal with --hdfs-keytab (or kinit and --hdfs-ccache), "+
		"and the cluster's configuration with --hadoop-conf-dir (hadoop.security.authentication=kerberos)",
		strings.Join(opts.Addresses, ","), opts.User, err)
}
