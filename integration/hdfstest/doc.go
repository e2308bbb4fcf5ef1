// Package hdfstest runs a real single-node HDFS (one NameNode and one DataNode,
// two JVMs) for integration tests, built from Hadoop jars resolved from Maven
// Central with tools/hdfs/pom.xml. There is no Docker and no Hadoop tarball: the
// harness needs only `java` (17) on PATH, and `mvn` the first time, when the jar
// cache is empty.
//
// A test calls StartTest, which skips under -short, registers Stop with
// t.Cleanup and fails the test when the cluster cannot start:
//
//	c := hdfstest.StartTest(t, hdfstest.Options{})
//	client, err := c.Client()
//
// Start does the same for code that has no testing.TB. Every listener is bound
// to 127.0.0.1; the NameNode RPC and HTTP ports are picked by the harness, the
// DataNode ports by the kernel (port 0). The generated configuration directory
// (ConfDir) can be used as HADOOP_CONF_DIR by tools and by
// hadoopconf.LoadFromEnvironment.
//
// Options.Kerberos runs a secure cluster instead: Kerberos and service
// authorization on the NameNode RPC, block access tokens, SASL data transfer
// protection (authentication, integrity or privacy) on the DataNode's
// unprivileged ports, and HTTPS-only web servers with SPNEGO, all with
// principals of a krb5test KDC for the host 127.0.0.1:
//
//	kdc := krb5test.Start(t, "EXAMPLE.TEST")
//	c := hdfstest.StartTest(t, hdfstest.Options{
//		Kerberos: hdfstest.KerberosFromKDC(t, kdc, hdfstest.ProtectionPrivacy),
//	})
//
// Client then logs in as the NameNode principal (the superuser), and ConfDir
// holds what a client needs (hadoop.security.authentication,
// dfs.namenode.kerberos.principal, dfs.data.transfer.protection).
//
// The JVMs run in their own process group (Stop signals the whole group) and,
// on Linux, die with the test process (PR_SET_PDEATHSIG), so a crashed or killed
// test does not leave Hadoop behind.
package hdfstest
