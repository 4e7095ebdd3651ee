// Package ldap is the password connector for a company directory: OpenLDAP,
// Active Directory or any LDAPv3 server. It finds the person with a service
// account, checks their password by binding as them on a connection of its
// own, and reads their groups from group entries or from memberOf. Refresh
// looks the person up again by their stable id, so someone removed or
// disabled in the directory loses their offline access.
//
// The ldaptest package starts a real slapd for tests.
package ldap
