// Package wire is the IMAP wire layer of imapd: it reads client commands
// into a small token tree, parses the argument grammars the commands need
// into typed values, and writes responses.
//
// # The contract
//
// A Reader reads one command at a time from a bufio.Reader, following the
// formal syntax of RFC 9051 §9 and RFC 3501 §9: a tag, a command name (with
// the UID prefix folded into Command.UID) and the arguments as Tokens —
// atoms, numbers, sequence sets, quoted strings, literals, NIL,
// parenthesised lists and bracketed section specs such as
// BODY.PEEK[HEADER.FIELDS (FROM)]<0.100>. Literals come in every form a
// client may send: synchronising {n}, non-synchronising {n+} (LITERAL+ and
// LITERAL-, RFC 7888) and binary ~{n} (RFC 3516). Before the data of a
// synchronising literal is read, the Reader calls Options.Continue, which
// either sends the "+" continuation request or refuses; a refused
// synchronising literal is never read, because the client waits for the
// continuation and abandons the command on a tagged response.
//
// APPEND message literals are not buffered: the Reader stops in front of
// each one and hands it to the caller as Command.Message, an io.Reader of
// known size; Reader.NextMessage then reads on (MULTIAPPEND, RFC 3502).
// Reader.ReadLine reads the raw lines of AUTHENTICATE and IDLE.
//
// The typed parsers (ParseSeqSet, ParseFetch, ParseStore, ParseSearch,
// ParseList, ParseStatus, ParseSelect, ParseAppend, ...) take the Tokens of
// a Command and return values or an *Error of class ClassSyntax.
//
// # What the limits guarantee
//
// Every byte a client sends is counted against Limits before it is kept:
// a line of text longer than Limits.MaxLine, a command larger than
// Limits.MaxCommand, a buffered literal larger than Limits.MaxLiteral, an
// APPEND message larger than Limits.MaxMessage, lists nested deeper than
// Limits.MaxDepth or more than Limits.MaxTokens tokens all fail with an
// *Error of class ClassTooBig, and the size a literal claims is checked
// before any memory is allocated for it, so a claimed 4 GB literal costs
// nothing. Memory held for one command is therefore bounded by about
// MaxCommand plus the bufio.Reader's buffer, whatever the client sends.
//
// # Errors and resynchronisation
//
// Every error the Reader returns for bad input is an *Error. When
// Error.Fatal is false the Reader has already skipped the rest of the
// offending command (including the data of any non-synchronising literal
// on it, at most Limits.MaxDiscard octets), so the session answers
// "tag BAD ..." (or "* BAD ..." when Error.Tag is empty) and reads the next
// command. When Error.Fatal is true the position in the stream is lost and
// the session must send BYE and close. Any other error (io.EOF, a network
// error) comes from the connection and ends the session. No input makes
// the package panic.
//
// A Writer writes responses; it picks atom, quoted string or literal for
// each string so that no CR, LF or 8-bit octet reaches the client in a form
// the grammar forbids, and quotes UTF-8 only once the client has enabled
// UTF8=ACCEPT or IMAP4rev2 (RFC 6855 §3, RFC 9051 §4.3).
package wire
