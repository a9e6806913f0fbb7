package auth

import (
	"container/list"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
)

// Limits of the open challenges a node keeps in memory (the registration
// and authentication ceremonies, which anyone may start without logging
// in). The table is partitioned per scope, so that a flood of
// keymesh_initiateRegistration against one scope cannot refuse another
// scope's users (issue 16: 10,100 unauthenticated requests filled a single
// node-wide table and every scope got -32005 for five minutes).
const (
	// MaxChallenges bounds the open challenges of all scopes together
	// (memory). When it is reached, a scope holding fewer than the
	// largest one takes the place of the largest one's oldest challenge,
	// so that a scope under its share always gets in.
	MaxChallenges = 10000
	// MaxChallengesPerScope bounds one scope's open challenges: a flood
	// fills its own scope's part only.
	MaxChallengesPerScope = 1000
	// MaxChallengesPerSource bounds the open challenges started from one
	// client address (httpapi.SourceOf: an IPv4 address or an IPv6 /64),
	// all scopes together, so that one address cannot fill a scope's part
	// either. In-process callers (no address) are not limited by it.
	MaxChallengesPerSource = 100
)

// challengeTable holds the open challenges, per scope in order of creation
// (hence of expiry: they all live ChallengeTTL), with the count of each
// source's. It is safe for concurrent use; the zero value is empty.
type challengeTable struct {
	mu      sync.Mutex
	byID    map[string]*challenge
	scopes  map[string]*list.List // of *challenge, oldest first
	sources map[string]int
}

// put stores c (with c.scope, c.source and c.expires set) under a fresh id,
// or refuses with api.CodeLimitExceeded when c's scope or source holds its
// share.
func (t *challengeTable) put(now time.Time, c *challenge) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil {
		t.byID = map[string]*challenge{}
		t.scopes = map[string]*list.List{}
		t.sources = map[string]int{}
	}
	t.expire(c.scope, now)
	if c.source != "" && t.sources[c.source] >= MaxChallengesPerSource {
		t.expireAll(now) // its challenges in other scopes may have expired
		if t.sources[c.source] >= MaxChallengesPerSource {
			return "", api.Errorf(api.CodeLimitExceeded, "too many open challenges from your address (at most %d for %s); complete or let them expire, then try again", MaxChallengesPerSource, ChallengeTTL)
		}
	}
	held := 0
	if l := t.scopes[c.scope]; l != nil {
		held = l.Len()
	}
	if held >= MaxChallengesPerScope {
		return "", api.Errorf(api.CodeLimitExceeded, "too many open challenges in scope %s; try again later", c.scope)
	}
	if len(t.byID) >= MaxChallenges {
		t.expireAll(now)
	}
	if len(t.byID) >= MaxChallenges {
		var big *list.List
		for _, o := range t.scopes {
			if big == nil || o.Len() > big.Len() {
				big = o
			}
		}
		if big == nil || big.Len() <= held+1 {
			return "", api.Errorf(api.CodeLimitExceeded, "too many open challenges; try again later")
		}
		t.remove(big.Front().Value.(*challenge))
	}
	l := t.scopes[c.scope]
	if l == nil {
		l = list.New()
		t.scopes[c.scope] = l
	}
	c.id = randID()
	c.elem = l.PushBack(c)
	t.byID[c.id] = c
	if c.source != "" {
		t.sources[c.source]++
	}
	return c.id, nil
}

// take removes and returns the challenge with id, or nil.
func (t *challengeTable) take(id string) *challenge {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byID[id]
	if c != nil {
		t.remove(c)
	}
	return c
}

// len is the number of challenges held, expired ones not yet removed
// included (for tests).
func (t *challengeTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

func (t *challengeTable) remove(c *challenge) {
	delete(t.byID, c.id)
	l := t.scopes[c.scope]
	l.Remove(c.elem)
	if l.Len() == 0 {
		delete(t.scopes, c.scope)
	}
	if c.source != "" {
		if t.sources[c.source]--; t.sources[c.source] <= 0 {
			delete(t.sources, c.source)
		}
	}
}

// expire removes scope's expired challenges, the oldest first.
func (t *challengeTable) expire(scope string, now time.Time) {
	l := t.scopes[scope]
	if l == nil {
		return
	}
	for e := l.Front(); e != nil && now.After(e.Value.(*challenge).expires); e = l.Front() {
		t.remove(e.Value.(*challenge))
		if l.Len() == 0 {
			return // remove dropped the list
		}
	}
}

func (t *challengeTable) expireAll(now time.Time) {
	for scope := range t.scopes {
		t.expire(scope, now)
	}
}
