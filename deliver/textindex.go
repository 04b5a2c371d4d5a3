package deliver

// Delivery-time text indexing ([deliver] text_index): the words of each
// delivered file are gathered once, as imapd's SEARCH BODY and TEXT would
// gather them, and appended to the pending file of every mailbox the
// file was linked into (maildir/textindex, mailroom-textindex.new).
// imapd folds them into its index under the messages' UIDs, so that the
// first search of a mailbox reads no message. The index is a cache: a
// failure here is logged and the delivery stands; imapd then reads the
// message when it indexes.

import (
	"errors"
	"log/slog"

	"mailroom/maildir"
	"mailroom/maildir/textindex"
)

// indexDelivered indexes the file of one recipient, delivered as the
// successful results (one file, hard-linked into each mailbox). The file
// is read and parsed once, whatever the number of mailboxes.
func indexDelivered(results []maildir.Result, log *slog.Logger) {
	var di *textindex.DeliveryIndexer
	for _, r := range results {
		if r.Err != nil || r.Path == "" {
			continue
		}
		if di == nil {
			di = textindex.GetDeliveryIndexer()
			defer textindex.PutDeliveryIndexer(di)
			if err := di.Collect(r.Path); err != nil {
				log.Warn("text index: message not indexed at delivery", "path", r.Path, "err", err)
				return
			}
		}
		dir, base := textindex.MaildirOf(r.Path)
		switch err := di.Append(dir, base); {
		case errors.Is(err, textindex.ErrPendingFull):
			// Nobody has read this mailbox for a long while: imapd
			// indexes the message itself when it is next searched.
			log.Debug("text index: pending file full", "path", r.Path)
		case err != nil:
			log.Warn("text index: message not indexed at delivery", "path", r.Path, "err", err)
		}
	}
}
