// The error of a failed IdP sign-in or token renewal, shaped like a problem document so that
// renderProblem shows its title, detail and code.

/** A sign-in failure with a title and a detail, shaped like a problem document for renderProblem. */
export class SignInError extends Error {
  /** @param {string} title @param {string} detail @param {string} [code] */
  constructor(title, detail, code = 'OIDC_SIGN_IN_FAILED') {
    super(detail);
    this.name = 'SignInError';
    this.problem = { title, detail, code, status: 0 };
    this.status = 0;
    this.code = code;
  }
}
