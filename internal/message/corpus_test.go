package message

import "mailroom/internal/message/messagetest"

// corpus is the test corpus this package's tests and imapd's share
// (messagetest.Corpus).
var corpus = messagetest.Corpus
