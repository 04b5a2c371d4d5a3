package privs

import (
	"os"
	"strings"
	"testing"
)

func TestUser(t *testing.T) {
	uid, gid, err := User("root")
	if err != nil || uid != 0 || gid != 0 {
		t.Errorf(`User("root") = %d, %d, %v`, uid, gid, err)
	}
	uid, _, err = User("0")
	if err != nil || uid != 0 {
		t.Errorf(`User("0") = %d, %v`, uid, err)
	}
	if _, _, err := User("no-such-user-mailroom"); err == nil || !strings.Contains(err.Error(), "no-such-user-mailroom") {
		t.Errorf("unknown user: %v", err)
	}
	if _, _, err := User("4000000000"); err == nil {
		t.Error("unknown numeric uid accepted")
	}
}

func TestMailIDs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give mail_root away (CI runs as root)")
	}
	dir := t.TempDir()
	tests := []struct {
		name, groupUser  string
		chown            [2]int // -1 keeps
		wantUID, wantGID int
		wantErr          string
	}{
		{"group of the user", "nobody", [2]int{65534, 65534}, 65534, nobodyGID(t), ""},
		{"user missing: mail_root's group", "no-such-user-mailroom", [2]int{65534, 65534}, 65534, 65534, ""},
		{"root user's group refused", "root", [2]int{65534, 65534}, 0, 0, "is root"},
		{"mail_root owned by root", "nobody", [2]int{0, 65534}, 0, 0, "belongs to root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Chown(dir, tt.chown[0], tt.chown[1]); err != nil {
				t.Fatal(err)
			}
			uid, gid, err := MailIDs(dir, tt.groupUser)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || uid != tt.wantUID || gid != tt.wantGID {
				t.Errorf("MailIDs = %d, %d, %v; want %d, %d", uid, gid, err, tt.wantUID, tt.wantGID)
			}
		})
	}
	if _, _, err := MailIDs(dir+"/missing", "nobody"); err == nil {
		t.Error("missing mail_root accepted")
	}
}

func nobodyGID(t *testing.T) int {
	_, gid, err := User("nobody")
	if err != nil {
		t.Fatal(err)
	}
	return gid
}
