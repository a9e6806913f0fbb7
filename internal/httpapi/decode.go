package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/keymesh/keymesh/api"
)

// request is one decoded JSON-RPC request.
type request struct {
	id     json.RawMessage // raw id; nil for a notification
	method string
	params json.RawMessage // object or array; nil when absent or null
}

// item is one element of a body: a request, or the error that answers an
// element that is not a valid request (id is then what could be read of its
// id, or nil for null).
type item struct {
	req *request
	id  json.RawMessage
	err *api.Error
}

// decodeBody parses a request body as JSON-RPC 2.0 (specification sections
// 4 and 6). It returns top != nil when the body as a whole is answered by
// one error (not JSON, an empty batch, too large a batch); otherwise one
// item per request, and whether the body was a batch.
//
// A batch is decoded element by element and refused as soon as it holds a
// request more than api.MaxBatch, without reading the rest: an oversized
// batch costs the node what MaxBatch requests cost to parse, not what the
// whole body holds. Whatever follows the MaxBatch+1st element is then not
// checked, so such a body gets api.CodeLimitExceeded even if it is not
// valid JSON further on.
func decodeBody(body []byte) (items []item, batch bool, top *api.Error) {
	parseError := api.Errorf(api.CodeParseError, "parse error")
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		if !json.Valid(body) {
			return nil, false, parseError
		}
		return []item{decodeRequest(trimmed)}, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, false, parseError
	}
	var elems []json.RawMessage
	for dec.More() {
		if len(elems) == api.MaxBatch {
			return nil, false, api.Errorf(api.CodeLimitExceeded, "batch of more than %d requests; at most %d allowed", api.MaxBatch, api.MaxBatch)
		}
		var e json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return nil, false, parseError
		}
		elems = append(elems, e)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, false, parseError
	}
	if _, err := dec.Token(); err != io.EOF { // only whitespace may follow
		return nil, false, parseError
	}
	if len(elems) == 0 {
		return nil, false, api.Errorf(api.CodeInvalidRequest, "invalid request: empty batch")
	}
	items = make([]item, len(elems))
	for i, e := range elems {
		items[i] = decodeRequest(e)
	}
	return items, true, nil
}

// decodeRequest decodes one request object strictly: only the members
// jsonrpc, id, method and params, each at most once. raw must be valid JSON.
func decodeRequest(raw []byte) item {
	invalid := func(id json.RawMessage, msg string) item {
		return item{id: id, err: api.Errorf(api.CodeInvalidRequest, "invalid request: %s", msg)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return invalid(nil, "not an object")
	}
	var members [4]json.RawMessage // jsonrpc, id, method, params
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid(nil, "malformed object")
		}
		key, _ := tok.(string)
		var slot int
		switch key {
		case "jsonrpc":
			slot = 0
		case "id":
			slot = 1
		case "method":
			slot = 2
		case "params":
			slot = 3
		default:
			return invalid(nil, "unknown member "+quote(key))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return invalid(nil, "malformed object")
		}
		if members[slot] != nil {
			return invalid(nil, "duplicate member "+quote(key))
		}
		members[slot] = bytes.TrimSpace(v)
	}
	jsonrpc, id, method, params := members[0], members[1], members[2], members[3]

	// The id first, so that the other errors can echo it.
	if id != nil {
		switch c := id[0]; {
		case c == '"':
			// Echoed back as is: a string that is not UTF-8 would make
			// the response invalid JSON (RFC 8259, section 8.1).
			if !utf8.Valid(id) {
				return invalid(nil, "id must be valid UTF-8")
			}
		case c == '-' || ('0' <= c && c <= '9'):
		case bytes.Equal(id, []byte("null")):
		default:
			return invalid(nil, "id must be a string, a number or null")
		}
	}
	var v string
	if jsonrpc == nil || json.Unmarshal(jsonrpc, &v) != nil || v != api.Version {
		return invalid(id, `"jsonrpc" must be "2.0"`)
	}
	var m string
	if method == nil || json.Unmarshal(method, &m) != nil || m == "" {
		return invalid(id, `"method" must be a non-empty string`)
	}
	if params != nil {
		switch params[0] {
		case '{', '[':
		case 'n': // null: the same as absent
			params = nil
		default:
			return invalid(id, `"params" must be an object or an array`)
		}
	}
	return item{req: &request{id: id, method: m, params: params}, id: id}
}

// quote returns s as a JSON string, shortened so that an error message
// does not echo an arbitrarily long key back.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
