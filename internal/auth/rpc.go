package auth

import (
	"context"
	"encoding/json"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
)

func handler[P, R any](f func(context.Context, P) (R, error)) httpapi.Handler {
	return func(ctx context.Context, params json.RawMessage) (any, error) {
		var p P
		if err := httpapi.DecodeParams(params, &p); err != nil {
			return nil, err
		}
		return f(ctx, p)
	}
}

// GetScopeParams are keymesh_getScope's params (api.GetScopeParams).
type GetScopeParams = api.GetScopeParams

// Register adds the auth method group to r: keymesh_createScope,
// keymesh_updateScope, keymesh_getScope, keymesh_initiateRegistration,
// keymesh_completeRegistration, keymesh_initiateAuthentication,
// keymesh_completeAuthentication, keymesh_delegatedRegistration (with
// Passport's names, without the prefix, as aliases) and
// keymesh_submitAuthRecord.
func Register(r *httpapi.Registry, s *Service) {
	for _, m := range []struct {
		name, alias string
		h           httpapi.Handler
	}{
		{api.MethodCreateScope, api.AliasCreateScope, handler(s.CreateScope)},
		{api.MethodUpdateScope, api.AliasUpdateScope, handler(s.UpdateScope)},
		{api.MethodGetScope, "", handler(func(ctx context.Context, p GetScopeParams) (*api.Scope, error) {
			return s.GetScope(ctx, p.Scope)
		})},
		{api.MethodInitiateRegistration, api.AliasInitiateRegistration, handler(s.InitiateRegistration)},
		{api.MethodCompleteRegistration, api.AliasCompleteRegistration, handler(s.CompleteRegistration)},
		{api.MethodInitiateAuthentication, api.AliasInitiateAuthentication, handler(s.InitiateAuthentication)},
		{api.MethodCompleteAuthentication, api.AliasCompleteAuthentication, handler(s.CompleteAuthentication)},
		{api.MethodDelegatedRegistration, api.AliasDelegatedRegistration, handler(s.DelegatedRegistration)},
		{api.MethodSubmitAuthRecord, "", handler(s.SubmitAuthRecord)},
	} {
		r.Register(m.name, m.h)
		if m.alias != "" {
			r.Alias(m.alias, m.name)
		}
	}
}
