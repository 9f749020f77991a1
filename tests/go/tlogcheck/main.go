// tlogcheck verifies sealmail transparency-log output with Go's independent
// implementations of signed notes (golang.org/x/mod/sumdb/note) and Merkle
// proofs (golang.org/x/mod/sumdb/tlog). It shares no code with sealmail, so
// agreement means the log speaks the published formats.
//
// Trust boundary: every input is treated as untrusted; the only thing taken
// on faith is the verifier key given with -vkey.
//
// Usage:
//
//	tlogcheck -vkey KEY [-origin ORIGIN] [-checkpoint FILE]... [-entries FILE]
//	          [-inclusion FILE]... [-consistency FILE]... [-bundle FILE]...
//
//	-vkey         verifier key string ("name+hhhhhhhh+base64"), as printed by
//	              `sealmail log key`
//	-origin       expected checkpoint origin (default: the key's name)
//	-checkpoint   a signed checkpoint note (`sealmail log checkpoint`)
//	-entries      entries from index 0, one per line, exact bytes
//	              (`sealmail log show --json`); every checkpoint's root is
//	              recomputed from them
//	-inclusion    output of `sealmail log prove-inclusion`
//	-consistency  output of `sealmail log prove-consistency`
//	-bundle       log.json of a legal export bundle: its signed checkpoint
//	              must verify with -vkey (and name the same key), and its
//	              entry must be a legal.exported event included in it
//
// Every proof must be against a tree size for which a checkpoint was given
// (a bundle brings its own).
// Exits 0 and prints a summary when everything verifies, 1 otherwise.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

type inclusionProof struct {
	Index    *int64           `json:"index"`
	Size     *int64           `json:"size"`
	LeafHash *tlog.Hash       `json:"leaf_hash"`
	Root     *tlog.Hash       `json:"root"`
	Proof    tlog.RecordProof `json:"proof"`
}

// bundleLog is a bundle's log.json: an inclusion proof with the entry, the
// signed checkpoint it is against and the verifier key of the log.
type bundleLog struct {
	inclusionProof
	Entry       *string `json:"entry"`
	Checkpoint  *string `json:"checkpoint"`
	VerifierKey *string `json:"verifier_key"`
}

type consistencyProof struct {
	OldSize *int64         `json:"old_size"`
	NewSize *int64         `json:"new_size"`
	OldRoot *tlog.Hash     `json:"old_root"`
	NewRoot *tlog.Hash     `json:"new_root"`
	Proof   tlog.TreeProof `json:"proof"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// parseCheckpoint reads a C2SP tlog-checkpoint body: origin, size, root,
// then optional non-empty extension lines.
func parseCheckpoint(text, origin string) (tlog.Tree, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return tlog.Tree{}, errors.New("malformed checkpoint")
	}
	if lines[0] != origin {
		return tlog.Tree{}, fmt.Errorf("checkpoint origin %q, want %q", lines[0], origin)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || lines[1] != strconv.FormatInt(n, 10) {
		return tlog.Tree{}, errors.New("malformed checkpoint size")
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		return tlog.Tree{}, errors.New("malformed checkpoint root")
	}
	for _, ext := range lines[3 : len(lines)-1] {
		if ext == "" {
			return tlog.Tree{}, errors.New("empty checkpoint extension line")
		}
	}
	return tlog.Tree{N: n, Hash: h}, nil
}

func readJSON(path string, v interface{}) {
	data, err := ioutil.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail("%s: %v", path, err)
	}
}

// signedRoot returns the root of a verified checkpoint of size n.
func signedRoot(trees map[int64]tlog.Hash, n int64, what string) tlog.Hash {
	h, ok := trees[n]
	if !ok {
		fail("%s: no verified checkpoint for tree size %d", what, n)
	}
	return h
}

func main() {
	var checkpoints, inclusions, consistencies, bundles fileList
	vkey := flag.String("vkey", "", "verifier key")
	origin := flag.String("origin", "", "expected origin (default: key name)")
	entriesPath := flag.String("entries", "", "entries, one per line, from index 0")
	flag.Var(&checkpoints, "checkpoint", "signed checkpoint file (repeatable)")
	flag.Var(&inclusions, "inclusion", "inclusion proof JSON file (repeatable)")
	flag.Var(&consistencies, "consistency", "consistency proof JSON file (repeatable)")
	flag.Var(&bundles, "bundle", "log.json of a legal export bundle (repeatable)")
	flag.Parse()
	if *vkey == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	if *origin == "" {
		*origin = verifier.Name()
	}

	trees := map[int64]tlog.Hash{}
	for _, path := range checkpoints {
		msg, err := ioutil.ReadFile(path)
		if err != nil {
			fail("%v", err)
		}
		n, err := note.Open(msg, note.VerifierList(verifier))
		if err != nil {
			fail("%s: %v", path, err)
		}
		tree, err := parseCheckpoint(n.Text, *origin)
		if err != nil {
			fail("%s: %v", path, err)
		}
		if old, ok := trees[tree.N]; ok && old != tree.Hash {
			fail("two signed checkpoints for size %d with different roots", tree.N)
		}
		trees[tree.N] = tree.Hash
	}

	// Recompute every checkpoint's root from the entries.
	var recordHashes []tlog.Hash
	if *entriesPath != "" {
		data, err := ioutil.ReadFile(*entriesPath)
		if err != nil {
			fail("%v", err)
		}
		var stored []tlog.Hash
		reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				if x < 0 || x >= int64(len(stored)) {
					return nil, fmt.Errorf("no stored hash %d", x)
				}
				out[i] = stored[x]
			}
			return out, nil
		})
		lines := bytes.SplitAfter(data, []byte("\n"))
		for i, line := range lines {
			if len(line) == 0 {
				continue
			}
			if line[len(line)-1] != '\n' {
				fail("entry %d: missing newline", i)
			}
			line = line[:len(line)-1]
			var fields map[string]string
			if err := json.Unmarshal(line, &fields); err != nil {
				fail("entry %d is not a JSON object of strings: %v", i, err)
			}
			if fields["type"] == "" || fields["time"] == "" {
				fail("entry %d has no type or time", i)
			}
			h, err := tlog.StoredHashes(int64(i), line, reader)
			if err != nil {
				fail("entry %d: %v", i, err)
			}
			stored = append(stored, h...)
			recordHashes = append(recordHashes, tlog.RecordHash(line))
		}
		for n, want := range trees {
			if n > int64(len(recordHashes)) {
				fail("checkpoint for size %d but only %d entries given", n, len(recordHashes))
			}
			got, err := tlog.TreeHash(n, reader)
			if err != nil {
				fail("tree hash at %d: %v", n, err)
			}
			if got != want {
				fail("entries do not match the signed checkpoint for size %d", n)
			}
		}
	}

	for _, path := range inclusions {
		var p inclusionProof
		readJSON(path, &p)
		if p.Index == nil || p.Size == nil || p.LeafHash == nil || p.Root == nil {
			fail("%s: missing field", path)
		}
		root := signedRoot(trees, *p.Size, path)
		if *p.Root != root {
			fail("%s: root differs from the signed checkpoint", path)
		}
		if recordHashes != nil {
			if *p.Index < 0 || *p.Index >= int64(len(recordHashes)) {
				fail("%s: index %d beyond the entries given", path, *p.Index)
			}
			if recordHashes[*p.Index] != *p.LeafHash {
				fail("%s: leaf hash is not the hash of entry %d", path, *p.Index)
			}
		}
		if err := tlog.CheckRecord(p.Proof, *p.Size, root, *p.Index, *p.LeafHash); err != nil {
			fail("%s: inclusion of %d in %d: %v", path, *p.Index, *p.Size, err)
		}
	}

	for _, path := range consistencies {
		var p consistencyProof
		readJSON(path, &p)
		if p.OldSize == nil || p.NewSize == nil || p.OldRoot == nil || p.NewRoot == nil {
			fail("%s: missing field", path)
		}
		oldRoot := signedRoot(trees, *p.OldSize, path)
		newRoot := signedRoot(trees, *p.NewSize, path)
		if *p.OldRoot != oldRoot || *p.NewRoot != newRoot {
			fail("%s: roots differ from the signed checkpoints", path)
		}
		if err := tlog.CheckTree(p.Proof, *p.NewSize, newRoot, *p.OldSize, oldRoot); err != nil {
			fail("%s: consistency %d -> %d: %v", path, *p.OldSize, *p.NewSize, err)
		}
	}

	for _, path := range bundles {
		var b bundleLog
		readJSON(path, &b)
		if b.Index == nil || b.Size == nil || b.LeafHash == nil || b.Root == nil ||
			b.Entry == nil || b.Checkpoint == nil || b.VerifierKey == nil {
			fail("%s: missing field", path)
		}
		if *b.VerifierKey != *vkey {
			fail("%s: made by another log", path)
		}
		n, err := note.Open([]byte(*b.Checkpoint), note.VerifierList(verifier))
		if err != nil {
			fail("%s: checkpoint: %v", path, err)
		}
		tree, err := parseCheckpoint(n.Text, *origin)
		if err != nil {
			fail("%s: checkpoint: %v", path, err)
		}
		if tree.N != *b.Size || tree.Hash != *b.Root {
			fail("%s: size or root differs from its checkpoint", path)
		}
		if old, ok := trees[tree.N]; ok && old != tree.Hash {
			fail("%s: checkpoint for size %d differs from another one", path, tree.N)
		}
		entry := []byte(*b.Entry)
		var fields map[string]string
		if err := json.Unmarshal(entry, &fields); err != nil || fields["type"] != "legal.exported" {
			fail("%s: the entry is not a legal.exported event", path)
		}
		if tlog.RecordHash(entry) != *b.LeafHash {
			fail("%s: leaf hash is not the hash of the entry", path)
		}
		if recordHashes != nil && (*b.Index >= int64(len(recordHashes)) ||
			recordHashes[*b.Index] != *b.LeafHash) {
			fail("%s: entry %d is not the one in the entries given", path, *b.Index)
		}
		if err := tlog.CheckRecord(b.Proof, tree.N, tree.Hash, *b.Index, *b.LeafHash); err != nil {
			fail("%s: inclusion of %d in %d: %v", path, *b.Index, tree.N, err)
		}
	}

	fmt.Printf("ok: %d checkpoints, %d entries, %d inclusion proofs, %d consistency proofs, "+
		"%d bundles\n", len(trees), len(recordHashes), len(inclusions), len(consistencies),
		len(bundles))
}
