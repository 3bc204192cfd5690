/*
 * How the common frameworks fold query parameter names together: the identity strategies refuse
 * the spellings that fold into a credential parameter, and the access log redacts them alike.
 */

/**
 * A parameter name as the most lenient frameworks read it, so that any name one of them takes for
 * the parameter folds into the same text:
 *
 * - PHP ignores everything from a NUL on and leading spaces, reads `.`, spaces and an unmatched
 *   `[` as `_`, and takes `name[...]` for `name`;
 * - Rack 2 (Rails 6, Sinatra) skips leading `[` and `]` and ends the name at the next bracket
 *   (`[account_id]`, `]account_id`, `account_id]` and `[]account_id` are all `account_id`); qs
 *   (Express 4) reads a leading `[name]` as `name`;
 * - Spring's data binder reads `!name` as a default for `name`;
 * - ASP.NET ignores case, and so do Unicode-aware comparisons that fold ı, İ, ſ and the Kelvin
 *   sign into ASCII letters; IIS decodes `%u005F` escapes (done before this, with the others).
 */
export function foldParamName(name: string): string {
  let text = name;
  const nul = text.indexOf('\0');
  if (nul >= 0) text = text.slice(0, nul);
  text = text.replace(/^[\s![\]]+/, '');
  const open = text.indexOf('[');
  const close = text.indexOf(']');
  if (close >= 0 && (open < 0 || close < open)) text = text.slice(0, close);
  else if (open >= 0 && text.indexOf(']', open) > open) text = text.slice(0, open);
  return text.replace(/[. []/g, '_').replace(/[ıİ]/g, 'i').replace(/ſ/g, 's').replace(/\u212a/g, 'k').toLowerCase();
}
