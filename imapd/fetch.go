package imapd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailroom/imapd/wire"
	"mailroom/internal/message"
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
	attrs := fc.Attrs
	if c.UID && !hasAttr(attrs, "UID") {
		// RFC 9051 §6.4.9: UID FETCH always returns the UID.
		attrs = append([]wire.FetchAttr{{Name: "UID"}}, attrs...)
	}
	for _, a := range attrs {
		if a.Name == "SAVEDATE" {
			return bad("%s is not supported", a.Name)
		}
	}
	// RFC 7162: MODSEQ, CHANGEDSINCE, VANISHED (condstore.go).
	if attrs, err = ss.fetchModSeqAttrs(c, &fc, attrs); err != nil {
		return err
	}
	refs, err := ss.resolve(fc.Seq, c.UID)
	if err != nil {
		return err
	}
	if refs, err = ss.fetchChangedSince(&fc, refs); err != nil {
		return err
	}
	if needsStructures(attrs) {
		// Only then: the first use of a view's cache reads the whole
		// file, which FETCH FLAGS right after SELECT does not need.
		v := ss.sel.view
		defer func() {
			c := v.structs()
			c.flush()
			c.compactIfWasteful(v.holdsUID)
		}()
	}
	setSeen := !ss.sel.readOnly && marksSeen(attrs)
	plan := newFetchPlan(attrs)
	defer plan.release()
	var failed error
	for _, ref := range refs {
		if err := ss.fetchOne(ref, plan, setSeen); err != nil {
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

// needsStructures reports whether a FETCH may use the structure cache:
// any attribute beyond what the view knows, and RFC822.SIZE, which a
// message without W= in its name gets from a whole parse.
func needsStructures(attrs []wire.FetchAttr) bool {
	for _, a := range attrs {
		if needsOf(a) > needNothing || a.Name == "RFC822.SIZE" {
			return true
		}
	}
	return false
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

// holdsUID reports whether uid may still name a message: one the view
// has, or one beyond what it knows (another process may have added it
// and cached its structure). The structure cache's compaction drops the
// records of the others.
func (v *view) holdsUID(uid uint32) bool {
	if _, ok := v.lookup(uid); ok {
		return true
	}
	return uid >= v.mbox.UIDNext()
}

// fetchPlan is what a FETCH command prepares once for all its messages:
// the response names of the sections, the field sets of HEADER.FIELDS,
// whether the cached header block alone can answer, and a buffer for
// answers built in memory.
type fetchPlan struct {
	attrs []wire.FetchAttr
	names []string            // per attribute: ResponseName for sections
	sets  []*message.FieldSet // per attribute: HEADER.FIELDS (.NOT) of the message itself
	// fromBlock: every attribute is answered by the view (UID, FLAGS,
	// RFC822.SIZE, MODSEQ) or by the message's header block (its HEADER and
	// HEADER.FIELDS), so a cached block spares decoding the Structure.
	fromBlock bool
	buf       *[]byte // from answerBuffers
}

// answerBuffers hold the answers FETCH builds in memory (a header block
// is at most message.MaxHeaderBlock octets): one per running FETCH.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2*message.MaxHeaderBlock+64); return &b }}

func newFetchPlan(attrs []wire.FetchAttr) *fetchPlan {
	p := &fetchPlan{attrs: attrs, names: make([]string, len(attrs)), sets: make([]*message.FieldSet, len(attrs)), fromBlock: true}
	for i, a := range attrs {
		switch {
		case a.Name == "UID" || a.Name == "FLAGS" || a.Name == "RFC822.SIZE" || a.Name == "MODSEQ":
		case a.Name == "BODY" && a.Section != nil && isMessageHeader(*a.Section):
			p.names[i] = a.ResponseName()
			if sec := a.Section; sec.Specifier != "HEADER" && len(sec.Fields) > 0 {
				p.sets[i] = message.NewFieldSet(sec.Fields, sec.Specifier == "HEADER.FIELDS.NOT")
			}
		default:
			p.fromBlock = false
			if a.Section != nil {
				p.names[i] = a.ResponseName()
			}
		}
	}
	return p
}

// isMessageHeader reports HEADER, or HEADER.FIELDS (.NOT) with fields,
// of the message itself (no part).
func isMessageHeader(sec wire.Section) bool {
	if len(sec.Part) > 0 {
		return false
	}
	switch sec.Specifier {
	case "HEADER":
		return true
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		return len(sec.Fields) > 0
	}
	return false
}

// answerBuf returns the plan's empty answer buffer.
func (p *fetchPlan) answerBuf() []byte {
	if p.buf == nil {
		p.buf = answerBuffers.Get().(*[]byte)
	}
	return (*p.buf)[:0]
}

// keep keeps a grown answer buffer for the next message.
func (p *fetchPlan) keep(b []byte) {
	if p.buf != nil && cap(b) <= 1<<20 {
		*p.buf = b[:0]
	}
}

func (p *fetchPlan) release() {
	if p.buf != nil {
		answerBuffers.Put(p.buf)
		p.buf = nil
	}
}

// fetchedMsg is what one message's FETCH response is made from, loaded
// lazily.
type fetchedMsg struct {
	ss    *session
	uid   uint32
	info  maildir.Message // looked up on first need when Path is ""
	st    *message.Structure
	block []byte // the header block from the cache, when st is not needed
	mtime int64
	file  *os.File
}

// loadInfo looks the message up in the engine's view, unless it was.
// FETCH FLAGS never needs it.
func (fm *fetchedMsg) loadInfo() error {
	if fm.info.Path != "" {
		return nil
	}
	info, ok := fm.ss.sel.view.mbox.Lookup(fm.uid)
	if !ok {
		return errExpunged
	}
	fm.info = info
	return nil
}

func (fm *fetchedMsg) close() {
	if fm.file != nil {
		_ = fm.file.Close()
	}
}

// open opens the message file, resyncing once if another process renamed
// it (a flag change elsewhere moves the file). A header-only Structure
// loaded before is completed on the way: whoever needs the file needs
// more than the header (the body's text for SEARCH, its parts), and
// may walk Structure.Root.
func (fm *fetchedMsg) open() (*os.File, error) {
	f, err := fm.openFile()
	if err != nil || fm.st == nil || !fm.st.HeaderOnly() {
		return f, err
	}
	if _, err := fm.complete(); err != nil {
		return nil, err
	}
	return f, nil
}

// openFile is open without completing the Structure.
func (fm *fetchedMsg) openFile() (*os.File, error) {
	if fm.file != nil {
		return fm.file, nil
	}
	if err := fm.loadInfo(); err != nil {
		return nil, err
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

// structure returns the message's Structure and mtime: at least its
// header. The Structure may be header-only (message.ParseHeader: ENVELOPE,
// the header sections, sizes and INTERNALDATE, read from the header
// alone); its Open completes it when a section needs the body. Callers
// that need the MIME tree (BODYSTRUCTURE, Part, BINARY) use complete.
func (fm *fetchedMsg) structure() (*message.Structure, error) {
	if fm.st != nil {
		return fm.st, nil
	}
	if err := fm.loadInfo(); err != nil {
		return nil, err
	}
	cache := fm.ss.sel.view.structs()
	if st, mtime := cache.get(fm.uid, fm.info.Size); st != nil {
		fm.st, fm.mtime = st, mtime
		return st, nil
	}
	if fm.info.VSize < 0 {
		// Without the CRLF size from the engine, only a whole parse
		// can tell RFC822.SIZE.
		return fm.complete()
	}
	st, size, mtime, err := fm.parse(true)
	if err != nil {
		return nil, err
	}
	fm.st, fm.mtime = st, mtime
	cache.put(fm.uid, size, mtime, st)
	return st, nil
}

// complete returns the message's whole Structure, parsing the file when
// the cache has none or only a header-only one (whose record the whole one
// then replaces).
func (fm *fetchedMsg) complete() (*message.Structure, error) {
	if fm.st != nil && !fm.st.HeaderOnly() {
		return fm.st, nil
	}
	if err := fm.loadInfo(); err != nil {
		return nil, err
	}
	cache := fm.ss.sel.view.structs()
	if fm.st == nil {
		if st, mtime := cache.get(fm.uid, fm.info.Size); st != nil && !st.HeaderOnly() {
			fm.st, fm.mtime = st, mtime
			return st, nil
		}
	}
	st, size, mtime, err := fm.parse(false)
	if err != nil {
		return nil, err
	}
	fm.st, fm.mtime = st, mtime
	cache.put(fm.uid, size, mtime, st)
	return st, nil
}

// parseBuffers and headerBuffers are the read buffers of message.Parse
// and message.ParseHeader, shared by all sessions: a FETCH that parses
// 100,000 messages allocates none, and an idle session holds none.
var (
	parseBuffers  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
	headerBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, message.HeaderScanBuffer) }}
)

// parse parses the message file and returns its Structure, size and
// mtime. The file is read through a bare descriptor (open, fstat, pread,
// close): an os.File would cost a poller registration attempt and a
// finalizer per message, which on a first pass over a big mailbox is a
// good part of the time.
//
// With headerOnly it reads the header alone (message.ParseHeader), taking
// the CRLF size from the engine (the W= of the file name).
func (fm *fetchedMsg) parse(headerOnly bool) (*message.Structure, int64, int64, error) {
	fd, err := fm.openFD()
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() { _ = syscall.Close(fd) }()
	var fi syscall.Stat_t
	if err := syscall.Fstat(fd, &fi); err != nil {
		return nil, 0, 0, fmt.Errorf("stat message: %w", err)
	}
	pool := &parseBuffers
	if headerOnly {
		pool = &headerBuffers
	}
	br := pool.Get().(*bufio.Reader)
	br.Reset(&fdReader{fd: fd})
	var st *message.Structure
	if headerOnly {
		st, err = message.ParseHeader(br, fi.Size, fm.info.VSize)
	} else {
		st, err = message.Parse(br)
	}
	br.Reset(nil)
	pool.Put(br)
	if errors.Is(err, message.ErrFileChanged) && headerOnly {
		// The name's W= does not fit the file: parse it all.
		return fm.parse(false)
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("parse message: %w", err)
	}
	return st, fi.Size, fi.Mtim.Nano(), nil
}

// openFD opens the message file read-only, resyncing once if another
// process renamed it, as open does.
func (fm *fetchedMsg) openFD() (int, error) {
	fd, err := syscall.Open(fm.info.Path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		if err := fm.ss.sel.view.sync(); err != nil {
			return -1, err
		}
		info, ok := fm.ss.sel.view.mbox.Lookup(fm.uid)
		if !ok {
			return -1, errExpunged
		}
		fm.info = info
		fd, err = syscall.Open(info.Path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("open message: %w", &os.PathError{Op: "open", Path: fm.info.Path, Err: err})
	}
	return fd, nil
}

// fdReader reads a descriptor from offset 0 with pread(2).
type fdReader struct {
	fd  int
	off int64
}

func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Pread(r.fd, p, r.off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read message: %w", err)
		}
		if n == 0 {
			return 0, io.EOF
		}
		r.off += int64(n)
		return n, nil
	}
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

func (ss *session) fetchOne(ref msgRef, plan *fetchPlan, setSeen bool) error {
	v := ss.sel.view
	attrs := plan.attrs
	fm := &fetchedMsg{ss: ss, uid: ref.uid}
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
			attrs = ss.implicitSeenAttrs(attrs) // RFC 7162 §3.1: UID, MODSEQ
		}
	}
	vm, ok := v.lookup(ref.uid)
	if !ok {
		return errExpunged
	}
	// Everything that can fail is loaded before the response starts, so
	// a failure never leaves half a FETCH response on the wire.
	need := needNothing
	for _, a := range attrs {
		need = max(need, needsOf(a))
		if a.Name == "RFC822.SIZE" && vm.size < 0 {
			need = needWhole // counted by a whole parse
		}
	}
	if need == needHeader && plan.fromBlock && len(attrs) == len(plan.attrs) {
		// The header sections alone: from the cached block, if there is one.
		if err := fm.loadInfo(); err != nil {
			return err
		}
		if b, ok := v.structs().headerBlock(fm.uid, fm.info.Size); ok {
			fm.block = b
			need = needNothing
		}
	}
	switch need {
	case needHeader:
		if _, err := fm.structure(); err != nil {
			return err
		}
	case needWhole:
		if _, err := fm.complete(); err != nil {
			return err
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
	ss.w.Number(uint64(ref.msn))
	ss.w.Raw(" FETCH (")
	for i, a := range attrs {
		if i > 0 {
			ss.w.SP()
		}
		var err error
		if i < len(plan.attrs) && plan.names[i] != "" && a.Name == "BODY" && isMessageHeader(*a.Section) {
			err = ss.fetchHeaderSection(fm, plan, i)
		} else {
			err = ss.fetchAttr(fm, &vm, a)
		}
		if err != nil {
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

// need says how much of a message's Structure a fetch attribute needs.
type need uint8

const (
	needNothing need = iota // UID, FLAGS, RFC822.SIZE (the engine knows it)
	needHeader              // ENVELOPE, INTERNALDATE, the header sections
	needWhole               // the MIME tree: BODYSTRUCTURE, parts, BINARY
)

func needsOf(a wire.FetchAttr) need {
	switch a.Name {
	case "UID", "FLAGS", "RFC822.SIZE", "MODSEQ":
		return needNothing
	case "ENVELOPE", "INTERNALDATE", "RFC822.HEADER":
		return needHeader
	case "BODY":
		if a.Section != nil && len(a.Section.Part) == 0 {
			switch a.Section.Specifier {
			case "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT":
				return needHeader
			case "":
				// BODY[]: the whole file, streamed in CRLF form; the
				// header-only Structure knows its sizes.
				return needHeader
			}
		}
	}
	return needWhole
}

func (ss *session) fetchAttr(fm *fetchedMsg, vm *vmsg, a wire.FetchAttr) error {
	switch a.Name {
	case "UID":
		ss.w.Raw("UID ")
		ss.w.Number(uint64(fm.uid))
	case "FLAGS":
		ss.w.Raw("FLAGS ")
		v := ss.sel.view
		var buf [8]string
		v.mu.Lock()
		names := ss.appendFlagNames(buf[:0], v, vm)
		v.mu.Unlock()
		ss.w.Flags(names)
	case "MODSEQ":
		ss.writeModSeq(vm) // RFC 7162 §3.1.4.1
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
			st, err := fm.complete()
			if err != nil {
				return err
			}
			size = st.CRLFSize
		}
		ss.w.Raw("RFC822.SIZE " + strconv.FormatInt(size, 10))
	case "ENVELOPE":
		ss.w.Raw("ENVELOPE ")
		writeEnvelope(ss.w, fm.st.Envelope())
	case "BODYSTRUCTURE":
		ss.w.Raw("BODYSTRUCTURE ")
		writeBodyStructure(ss.w, fm.st, true)
	case "BODY":
		if a.Section == nil {
			ss.w.Raw("BODY ")
			writeBodyStructure(ss.w, fm.st, false)
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

// fetchHeaderSection writes BODY[HEADER], BODY[HEADER.FIELDS (...)] or
// BODY[HEADER.FIELDS.NOT (...)] of the message, attribute i of the plan,
// built in memory from the header block (the cached one, or the
// Structure's) in one pass; without a block, through fetchSection.
func (ss *session) fetchHeaderSection(fm *fetchedMsg, plan *fetchPlan, i int) error {
	a := plan.attrs[i]
	b := plan.answerBuf()
	ok := fm.block != nil
	if ok {
		b = message.AppendHeaderSection(b, fm.block, plan.sets[i])
	} else {
		b, ok = fm.st.AppendHeaderSection(b, plan.sets[i])
	}
	if !ok {
		return ss.fetchSection(fm, plan.names[i], *a.Section, a.Partial)
	}
	plan.keep(b)
	if a.Partial != nil {
		skip, count := partialBounds(a.Partial)
		b = b[min(skip, int64(len(b))):]
		b = b[:min(count, int64(len(b)))]
	}
	ss.w.Raw(plan.names[i])
	ss.w.SP()
	ss.w.LiteralBytes(b)
	return nil
}

// partialBounds is <offset.count> as octets to skip and at most to send
// (RFC 9051 §6.4.5); without a count, all the rest.
func partialBounds(p *wire.Partial) (skip, count int64) {
	skip, count = int64(min(p.Offset, math.MaxInt64)), math.MaxInt64
	if p.HasCount {
		count = int64(min(p.Count, math.MaxInt64))
	}
	return skip, count
}

// fetchSection writes "NAME literal" for BODY[section]<partial>. A
// section the message does not have is the empty string (RFC 9051
// §6.4.5 leaves the choice to the server; Dovecot does the same).
func (ss *session) fetchSection(fm *fetchedMsg, name string, wsec wire.Section, wpartial *wire.Partial) error {
	sec, partial := messageSection(wsec, wpartial)
	// The header sections usually come from the cached header block: no
	// file open for BODY.PEEK[HEADER.FIELDS (...)] over a whole mailbox.
	var ra io.ReaderAt
	if fm.st.NeedsFile(sec) {
		f, err := fm.openFile() // Open completes the Structure if it must
		if err != nil {
			return err
		}
		ra = f
	}
	r, n, err := fm.st.Open(ra, sec, partial)
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

// messageSection converts a parsed section and partial into
// internal/message's own types. They have the same fields, so this is a
// conversion, not a copy: nothing is allocated on the FETCH path, and a
// field added to one but not the other stops the build here.
func messageSection(sec wire.Section, p *wire.Partial) (message.Section, *message.Partial) {
	return message.Section(sec), (*message.Partial)(p)
}

// fetchBinary writes BINARY[part]<partial> (RFC 3516 §4.2) as a literal8.
func (ss *session) fetchBinary(fm *fetchedMsg, a wire.FetchAttr) error {
	f, err := fm.open()
	if err != nil {
		return err
	}
	sec, partial := messageSection(*a.Section, a.Partial)
	r, n, err := fm.st.OpenBinary(f, sec.Part, partial)
	if err != nil {
		return err
	}
	ss.w.Raw(a.ResponseName() + " ")
	return ss.w.Literal8(n, r)
}
