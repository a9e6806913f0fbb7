package auth

import (
	"context"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// GetScopeParams are keymesh_getScope's params (api.GetScopeParams).
type GetScopeParams = api.GetScopeParams

// Methods returns the auth method group: keymesh_createScope,
// keymesh_updateScope, keymesh_getScope, keymesh_initiateRegistration,
// keymesh_completeRegistration, keymesh_initiateAuthentication,
// keymesh_completeAuthentication, keymesh_delegatedRegistration (with
// Passport's names, without the prefix, as aliases) and
// keymesh_submitAuthRecord.
func Methods(s *Service) []httpapi.Method {
	alias := func(a string) []string { return []string{a} }
	return []httpapi.Method{
		{Name: api.MethodCreateScope, Aliases: alias(api.AliasCreateScope), Handler: httpapi.Handle(s.CreateScope)},
		{Name: api.MethodUpdateScope, Aliases: alias(api.AliasUpdateScope), Handler: httpapi.Handle(s.UpdateScope)},
		{Name: api.MethodGetScope, Handler: httpapi.Handle(func(ctx context.Context, p GetScopeParams) (*api.Scope, error) {
			return s.GetScope(ctx, p.Scope)
		})},
		{Name: api.MethodInitiateRegistration, Aliases: alias(api.AliasInitiateRegistration), Handler: httpapi.Handle(s.InitiateRegistration)},
		{Name: api.MethodCompleteRegistration, Aliases: alias(api.AliasCompleteRegistration), Handler: httpapi.Handle(s.CompleteRegistration)},
		{Name: api.MethodInitiateAuthentication, Aliases: alias(api.AliasInitiateAuthentication), Handler: httpapi.Handle(s.InitiateAuthentication)},
		{Name: api.MethodCompleteAuthentication, Aliases: alias(api.AliasCompleteAuthentication), Handler: httpapi.Handle(s.CompleteAuthentication)},
		{Name: api.MethodDelegatedRegistration, Aliases: alias(api.AliasDelegatedRegistration), Handler: httpapi.Handle(s.DelegatedRegistration)},
		{Name: api.MethodSubmitAuthRecord, Handler: httpapi.Handle(s.SubmitAuthRecord)},
	}
}

// Register adds the auth method group (Methods) to r.
func Register(r *httpapi.Registry, s *Service) { r.Add(Methods(s)...) }
