// Package account holds mailroom's users: the passwd-file that lists them,
// the password hashes that authenticate them, and the edits the admin
// command makes to the file.
//
// On-disk contract (/etc/mailroom/passwd, Dovecot's passwd-file syntax, so a
// file can move between Dovecot and mailroom unchanged):
//
//	user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields
//
// Fields are separated by ':'; trailing fields may be omitted. Empty lines
// and lines whose first byte is '#' are ignored. extra_fields is everything
// after the seventh ':' (so it may itself contain ':', as quota rules do): a
// space-separated list of key=value pairs; a key without '=' has an empty
// value. Keys starting with "userdb_" are userdb settings in Dovecot's sense;
// mailroom reads userdb_quota_rule (and userdb_quota_rule2, ...) for quotas.
//
// Decisions beyond Dovecot's documentation:
//   - the user field must be a full address accepted by ValidAddress; lookups
//     are case-insensitive (Dovecot's usual auth_username_format=%Lu);
//   - a user listed twice, a non-numeric or zero uid/gid (Dovecot also refuses
//     uid 0), a relative home, a malformed quota rule, or a line containing CR
//     is an error naming path:line, so a broken file is noticed at load time;
//   - password schemes are BLF-CRYPT, SHA512-CRYPT and ARGON2ID; a hash without
//     {SCHEME} is Dovecot's CRYPT and is accepted when it is one of those
//     formats. An empty or unknown hash never verifies, nor does one whose
//     costs exceed what any real hash uses (Argon2id above m=1 GiB or
//     m·t above 4 GiB; SHA512-CRYPT above 10^7 rounds), so that a
//     tampered file cannot make a login allocate or compute without bound;
//   - errors about a line never quote its fields: when a ':' is missing or
//     doubled, any of them may hold the hash.
//
// Edits (AddUser, SetPassword, DeleteUser) take an exclusive flock(2) on
// "<path>.lock", rewrite the file atomically (readers see the old file or the
// new one) and leave every other byte of the file as it was.
package account
