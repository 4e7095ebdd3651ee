// Package ldaptest starts a real OpenLDAP slapd for tests: its own process on
// free loopback ports (ldap:// with StartTLS, and ldaps://), a configuration
// generated in a temporary directory, a CA and server certificate made for
// the test, and seeded people and groups. Tests skip when slapd is not
// installed (scripts/ensure-slapd.sh installs it).
package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// The seeded directory.
const (
	BaseDN       = "dc=example,dc=com"
	PeopleDN     = "ou=people," + BaseDN
	GroupsDN     = "ou=groups," + BaseDN
	BindDN       = "cn=admin," + BaseDN
	BindPassword = "admin-secret"
	// DisabledFilter matches the people Disable marked.
	DisabledFilter = "(employeeType=disabled)"
)

// A seeded person.
type User struct {
	UID, Name, Email, Password string
}

// DN is the person's entry.
func (u User) DN() string { return "uid=" + u.UID + "," + PeopleDN }

// Seeded people: Alice is in engineering and staff, Bob in staff.
var (
	Alice = User{UID: "alice", Name: "Alice Liddell", Email: "alice@example.com", Password: "alice-password"}
	Bob   = User{UID: "bob", Name: "Bob Builder", Email: "bob@example.com", Password: "bob-password"}
)

// GroupDN is the entry of a group made by AddGroup.
func GroupDN(cn string) string { return "cn=" + cn + "," + GroupsDN }

// Server is a running slapd.
type Server struct {
	// Host is 127.0.0.1:port for ldap:// (plain, or StartTLS).
	Host string
	// LDAPSHost is 127.0.0.1:port for ldaps://.
	LDAPSHost string
	// CAFile is the PEM file of the CA that signed the server certificate
	// (for 127.0.0.1 and localhost).
	CAFile string

	slapd, conf string
	cmd         *exec.Cmd
	done        chan struct{}
}

// Start runs slapd until the test ends, with Alice, Bob and the groups
// engineering (Alice) and staff (Alice, Bob) seeded. The memberof overlay
// keeps each person's memberOf in step with the groups' member values.
func Start(t testing.TB) *Server {
	t.Helper()
	slapd := findTool(t, "slapd")
	slapadd := findTool(t, "slapadd")
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCerts(t, dir)
	dbDir := filepath.Join(dir, "db")
	if err := os.Mkdir(dbDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	writeFile(t, conf, fmt.Sprintf(slapdConf, caFile, certFile, keyFile, BaseDN, BindDN, BindPassword, dbDir))

	// The tree and the people go in with slapadd; the groups through the
	// server, so the memberof overlay sees them (slapadd bypasses overlays).
	seed := filepath.Join(dir, "seed.ldif")
	var ldif strings.Builder
	fmt.Fprintf(&ldif, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n", BaseDN)
	fmt.Fprintf(&ldif, "dn: %s\nobjectClass: organizationalUnit\nou: people\n\n", PeopleDN)
	fmt.Fprintf(&ldif, "dn: %s\nobjectClass: organizationalUnit\nou: groups\n\n", GroupsDN)
	for _, u := range []User{Alice, Bob} {
		ldif.WriteString(userLDIF(u))
	}
	writeFile(t, seed, ldif.String())
	if out, err := exec.Command(slapadd, "-f", conf, "-l", seed).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}

	s := &Server{CAFile: caFile, slapd: slapd, conf: conf}
	var lastErr error
	// A free port can be taken again between choosing and binding it: retry.
	for range 5 {
		s.Host, s.LDAPSHost = freePort(t), freePort(t)
		lastErr = s.run(t)
		if lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	s.AddGroup(t, "engineering", Alice.DN())
	s.AddGroup(t, "staff", Alice.DN(), Bob.DN())
	return s
}

func (s *Server) run(t testing.TB) error {
	var stderr bytes.Buffer
	urls := fmt.Sprintf("ldap://%s/ ldaps://%s/", s.Host, s.LDAPSHost)
	// -d 0 keeps slapd in the foreground, a child the test can kill.
	cmd := exec.Command(s.slapd, "-f", s.conf, "-h", urls, "-d", "0")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start slapd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	t.Cleanup(s.Stop)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			return fmt.Errorf("slapd exited: %s", stderr.String())
		default:
		}
		if conn, err := goldap.DialURL("ldap://" + s.Host); err == nil {
			err = conn.Bind(BindDN, BindPassword)
			conn.Close()
			if err == nil {
				return nil
			}
		}
	}
	s.Stop()
	return fmt.Errorf("slapd does not answer on %s: %s", s.Host, stderr.String())
}

// Stop kills slapd (for tests of a directory that is down); the test's
// clean-up calls it too.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
}

// Restart stops slapd and starts it again on the same ports with the same
// entries: connections made before it are broken.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.run(t); err != nil {
		t.Fatal(err)
	}
}

// Conn is a connection bound as the administrator, closed when the test ends.
func (s *Server) Conn(t testing.TB) *goldap.Conn {
	t.Helper()
	conn, err := goldap.DialURL("ldap://" + s.Host)
	if err != nil {
		t.Fatalf("dial slapd: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetTimeout(10 * time.Second)
	if err := conn.Bind(BindDN, BindPassword); err != nil {
		t.Fatalf("bind as %s: %v", BindDN, err)
	}
	return conn
}

// AddUser adds a person under PeopleDN.
func (s *Server) AddUser(t testing.TB, u User) {
	t.Helper()
	req := goldap.NewAddRequest(u.DN(), nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{u.UID})
	req.Attribute("cn", []string{u.Name})
	req.Attribute("sn", []string{lastWord(u.Name)})
	req.Attribute("mail", []string{u.Email})
	req.Attribute("userPassword", []string{ssha(u.Password)})
	if err := s.Conn(t).Add(req); err != nil {
		t.Fatalf("add %s: %v", u.DN(), err)
	}
}

// AddGroup adds a groupOfNames under GroupsDN.
func (s *Server) AddGroup(t testing.TB, cn string, memberDNs ...string) {
	t.Helper()
	req := goldap.NewAddRequest(GroupDN(cn), nil)
	req.Attribute("objectClass", []string{"groupOfNames"})
	req.Attribute("cn", []string{cn})
	req.Attribute("member", memberDNs)
	if err := s.Conn(t).Add(req); err != nil {
		t.Fatalf("add group %s: %v", cn, err)
	}
}

// AddMember and RemoveMember change a group's members.
func (s *Server) AddMember(t testing.TB, group, memberDN string) {
	t.Helper()
	req := goldap.NewModifyRequest(GroupDN(group), nil)
	req.Add("member", []string{memberDN})
	s.Modify(t, req)
}

func (s *Server) RemoveMember(t testing.TB, group, memberDN string) {
	t.Helper()
	req := goldap.NewModifyRequest(GroupDN(group), nil)
	req.Delete("member", []string{memberDN})
	s.Modify(t, req)
}

// Disable marks a person as DisabledFilter matches them.
func (s *Server) Disable(t testing.TB, dn string) {
	t.Helper()
	req := goldap.NewModifyRequest(dn, nil)
	req.Replace("employeeType", []string{"disabled"})
	s.Modify(t, req)
}

// Modify applies req as the administrator.
func (s *Server) Modify(t testing.TB, req *goldap.ModifyRequest) {
	t.Helper()
	if err := s.Conn(t).Modify(req); err != nil {
		t.Fatalf("modify %s: %v", req.DN, err)
	}
}

// Delete removes an entry.
func (s *Server) Delete(t testing.TB, dn string) {
	t.Helper()
	if err := s.Conn(t).Del(goldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("delete %s: %v", dn, err)
	}
}

// The memberof overlay (a module in Debian's build) maintains memberOf on
// people from the member values of groupOfNames entries.
const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile %s
TLSCertificateFile %s
TLSCertificateKeyFile %s
database mdb
suffix "%s"
rootdn "%s"
rootpw %s
directory %s
maxsize 67108864
index objectClass,uid,member eq
overlay memberof
memberof-refint true
`

func userLDIF(u User) string {
	return fmt.Sprintf("dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s\nuserPassword: %s\n\n",
		u.DN(), u.UID, u.Name, lastWord(u.Name), u.Email, ssha(u.Password))
}

// ssha is the {SSHA} scheme slapd checks binds against.
func ssha(password string) string {
	salt := make([]byte, 8)
	rand.Read(salt)
	sum := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

func lastWord(s string) string { return s[strings.LastIndex(s, " ")+1:] }

func findTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; isExecutable(p) {
		return p
	}
	// make test installs slapd and says so: there a missing one is a broken
	// install step, not a reason to skip.
	if os.Getenv("CONSENTRY_TEST_SLAPD") != "" {
		t.Fatalf("%s is not installed, although CONSENTRY_TEST_SLAPD is set (scripts/ensure-slapd.sh installs it)", name)
	}
	t.Skipf("%s is not installed (scripts/ensure-slapd.sh installs it)", name)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 and
// localhost signed by it, and returns the files' paths.
func writeCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test directory CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return caFile, certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
