package textindex

import "syscall"

// mapFlags maps the index and pending files with their pages populated
// at once: a query or a fold reads them whole, and one populating pass is
// much cheaper than a page fault per 4 KiB (measured: a tenth of a
// 20,000-message fold).
const mapFlags = syscall.MAP_SHARED | syscall.MAP_POPULATE
