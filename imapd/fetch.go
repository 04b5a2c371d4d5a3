package imapd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"mailroom/imapd/message"
	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// cmdFetch is FETCH and UID FETCH (RFC 9051 §6.4.5). Message data is
// streamed from the file through the message's Structure, which comes
// from the mailbox's cache or, once, from parsing the file.
func (ss *session) cmdFetch(c *wire.Command) error {
	fc, err := wire.ParseFetch(c.Args)
	if err != nil {
		return err
	}
	if fc.HasChangedSince || fc.Vanished {
		return bad("CONDSTORE is not enabled")
	}
	attrs := fc.Attrs
	if c.UID && !hasAttr(attrs, "UID") {
		// RFC 9051 §6.4.9: UID FETCH always returns the UID.
		attrs = append([]wire.FetchAttr{{Name: "UID"}}, attrs...)
	}
	for _, a := range attrs {
		if a.Name == "MODSEQ" || a.Name == "SAVEDATE" {
			return bad("%s is not supported", a.Name)
		}
	}
	refs, err := ss.resolve(fc.Seq, c.UID)
	if err != nil {
		return err
	}
	defer ss.sel.view.structs().flush()
	setSeen := !ss.sel.readOnly && marksSeen(attrs)
	var failed error
	for _, ref := range refs {
		if err := ss.fetchOne(ref, attrs, setSeen); err != nil {
			if errors.Is(err, errClose) {
				return err
			}
			if failed == nil {
				failed = err
			}
		}
	}
	if failed != nil {
		if se := (*statusError)(nil); errors.As(failed, &se) {
			return failed
		}
		ss.log.Error("fetch", "err", failed)
		return no("SERVERBUG", "some messages could not be fetched")
	}
	return nil
}

func hasAttr(attrs []wire.FetchAttr, name string) bool {
	for _, a := range attrs {
		if a.Name == name {
			return true
		}
	}
	return false
}

// marksSeen reports whether the fetch sets \Seen (RFC 9051 §6.4.5: BODY[]
// without .PEEK, RFC822, RFC822.TEXT; BINARY[] without .PEEK).
func marksSeen(attrs []wire.FetchAttr) bool {
	for _, a := range attrs {
		switch {
		case (a.Name == "BODY" || a.Name == "BINARY") && a.Section != nil && !a.Peek:
			return true
		case a.Name == "RFC822", a.Name == "RFC822.TEXT":
			return true
		}
	}
	return false
}

// fetchedMsg is what one message's FETCH response is made from, loaded
// lazily.
type fetchedMsg struct {
	ss    *session
	uid   uint32
	info  maildir.Message
	st    *message.Structure
	mtime int64
	file  *os.File
}

func (fm *fetchedMsg) close() {
	if fm.file != nil {
		_ = fm.file.Close()
	}
}

// open opens the message file, resyncing once if another process renamed
// it (a flag change elsewhere moves the file).
func (fm *fetchedMsg) open() (*os.File, error) {
	if fm.file != nil {
		return fm.file, nil
	}
	f, err := os.Open(fm.info.Path)
	if errors.Is(err, os.ErrNotExist) {
		if err := fm.ss.sel.view.sync(); err != nil {
			return nil, err
		}
		info, ok := fm.ss.sel.view.mbox.Lookup(fm.uid)
		if !ok {
			return nil, errExpunged
		}
		fm.info = info
		f, err = os.Open(info.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("open message: %w", err)
	}
	fm.file = f
	return f, nil
}

var errExpunged = no("EXPUNGEISSUED", "some messages were expunged")

// structure returns the message's Structure and mtime.
func (fm *fetchedMsg) structure() (*message.Structure, error) {
	if fm.st != nil {
		return fm.st, nil
	}
	cache := fm.ss.sel.view.structs()
	if st, mtime := cache.get(fm.uid, fm.info.Size); st != nil {
		fm.st, fm.mtime = st, mtime
		return st, nil
	}
	f, err := fm.open()
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat message: %w", err)
	}
	st, err := message.Parse(bufio.NewReaderSize(&offsetReader{f: f}, 32<<10))
	if err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	fm.st, fm.mtime = st, fi.ModTime().UnixNano()
	cache.put(fm.uid, fi.Size(), fm.mtime, st)
	return st, nil
}

// internalDate is the file's mtime (RFC 9051 §2.3.3; maildir keeps it).
func (fm *fetchedMsg) internalDate() (time.Time, error) {
	if fm.mtime == 0 {
		if _, err := fm.structure(); err != nil {
			return time.Time{}, err
		}
	}
	return time.Unix(0, fm.mtime), nil
}

// offsetReader reads a file from offset 0 with ReadAt, leaving the file
// offset alone.
type offsetReader struct {
	f   *os.File
	off int64
}

func (r *offsetReader) Read(p []byte) (int, error) {
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	return n, err
}

func (ss *session) fetchOne(ref msgRef, attrs []wire.FetchAttr, setSeen bool) error {
	v := ss.sel.view
	info, ok := v.mbox.Lookup(ref.uid)
	if !ok {
		return errExpunged
	}
	fm := &fetchedMsg{ss: ss, uid: ref.uid, info: info}
	defer fm.close()
	if setSeen {
		changed, err := v.storeFlags([]uint32{ref.uid}, func(f maildir.Flags, k maildir.Keywords) (maildir.Flags, maildir.Keywords) {
			return f | maildir.FlagSeen, k
		}, ss.sel)
		if err != nil {
			return err
		}
		if len(changed) > 0 && !hasAttr(attrs, "FLAGS") {
			attrs = append(attrs, wire.FetchAttr{Name: "FLAGS"})
		}
	}
	vm, ok := v.lookup(ref.uid)
	if !ok {
		return errExpunged
	}
	// Everything that can fail is loaded before the response starts, so
	// a failure never leaves half a FETCH response on the wire.
	for _, a := range attrs {
		if needsStructure(a) {
			if _, err := fm.structure(); err != nil {
				return err
			}
			break
		}
	}
	for _, a := range attrs {
		if a.Name == "BINARY" || a.Name == "BINARY.SIZE" {
			if err := checkBinary(fm.st, a.Section.Part); err != nil {
				return err
			}
		}
	}
	ss.w.Untagged()
	ss.w.Raw(strconv.Itoa(ref.msn) + " FETCH (")
	for i, a := range attrs {
		if i > 0 {
			ss.w.SP()
		}
		if err := ss.fetchAttr(fm, &vm, a); err != nil {
			// Half a response is on the wire: the stream is broken.
			return fmt.Errorf("%w: fetch %s: %w", errClose, a.Name, err)
		}
	}
	ss.w.Raw(")")
	ss.w.CRLF()
	return nil
}

// checkBinary refuses BINARY of a part that is missing or whose
// encoding cannot be decoded (RFC 3516 §4.3 UNKNOWN-CTE).
func checkBinary(st *message.Structure, path []uint32) error {
	p, err := st.Part(path)
	if err != nil {
		return no("", "no such part")
	}
	switch strings.ToLower(p.Encoding) {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable":
		return nil
	}
	return no("UNKNOWN-CTE", "cannot decode the part's content transfer encoding")
}

func needsStructure(a wire.FetchAttr) bool {
	switch a.Name {
	case "UID", "FLAGS":
		return false
	case "RFC822.SIZE":
		return false
	}
	return true
}

func (ss *session) fetchAttr(fm *fetchedMsg, vm *vmsg, a wire.FetchAttr) error {
	switch a.Name {
	case "UID":
		ss.w.Raw("UID " + strconv.FormatUint(uint64(fm.uid), 10))
	case "FLAGS":
		ss.w.Raw("FLAGS ")
		v := ss.sel.view
		v.mu.Lock()
		names := ss.flagNames(v, vm)
		v.mu.Unlock()
		ss.w.Flags(names)
	case "INTERNALDATE":
		t, err := fm.internalDate()
		if err != nil {
			return err
		}
		ss.w.Raw("INTERNALDATE ")
		ss.w.DateTime(t)
	case "RFC822.SIZE":
		size := vm.size
		if size < 0 {
			st, err := fm.structure()
			if err != nil {
				return err
			}
			size = st.CRLFSize
		}
		ss.w.Raw("RFC822.SIZE " + strconv.FormatInt(size, 10))
	case "ENVELOPE":
		ss.w.Raw("ENVELOPE ")
		message.WriteEnvelope(ss.w, fm.st.Envelope())
	case "BODYSTRUCTURE":
		ss.w.Raw("BODYSTRUCTURE ")
		message.WriteBodyStructure(ss.w, fm.st, true)
	case "BODY":
		if a.Section == nil {
			ss.w.Raw("BODY ")
			message.WriteBodyStructure(ss.w, fm.st, false)
			return nil
		}
		return ss.fetchSection(fm, a.ResponseName(), *a.Section, a.Partial)
	case "RFC822":
		return ss.fetchSection(fm, "RFC822", wire.Section{}, nil)
	case "RFC822.HEADER":
		return ss.fetchSection(fm, "RFC822.HEADER", wire.Section{Specifier: "HEADER"}, nil)
	case "RFC822.TEXT":
		return ss.fetchSection(fm, "RFC822.TEXT", wire.Section{Specifier: "TEXT"}, nil)
	case "BINARY":
		return ss.fetchBinary(fm, a)
	case "BINARY.SIZE":
		f, err := fm.open()
		if err != nil {
			return err
		}
		n, err := fm.st.BinarySize(f, a.Section.Part)
		if err != nil {
			return err
		}
		ss.w.Raw("BINARY.SIZE[" + a.Section.String() + "] " + strconv.FormatInt(n, 10))
	default:
		return fmt.Errorf("unknown fetch attribute %s", a.Name)
	}
	return nil
}

// fetchSection writes "NAME literal" for BODY[section]<partial>. A
// section the message does not have is the empty string (RFC 9051
// §6.4.5 leaves the choice to the server; Dovecot does the same).
func (ss *session) fetchSection(fm *fetchedMsg, name string, sec wire.Section, partial *wire.Partial) error {
	f, err := fm.open()
	if err != nil {
		return err
	}
	r, n, err := fm.st.Open(f, sec, partial)
	if errors.Is(err, message.ErrNoSection) {
		ss.w.Raw(name + ` ""`)
		return nil
	}
	if err != nil {
		return err
	}
	ss.w.Raw(name + " ")
	return ss.w.Literal(n, r)
}

// fetchBinary writes BINARY[part]<partial> (RFC 3516 §4.2) as a literal8.
func (ss *session) fetchBinary(fm *fetchedMsg, a wire.FetchAttr) error {
	f, err := fm.open()
	if err != nil {
		return err
	}
	r, n, err := fm.st.OpenBinary(f, a.Section.Part, a.Partial)
	if err != nil {
		return err
	}
	ss.w.Raw(a.ResponseName() + " ")
	return ss.w.Literal8(n, r)
}
