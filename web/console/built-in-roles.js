// The built-in roles an API key holds or a role binding grants, in the server's order. The
// console's plain modules cannot import the server's TypeScript, so the list is kept here; a test
// checks it is the server's (BUILT_IN_ROLES). Pure data: no DOM, so that test can import it.

export const BUILT_IN_ROLES = ['viewer', 'developer', 'operator', 'auditor', 'admin'];
