// Numbers, dates and the platform's words as people read them.

const plain = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const twoDecimals = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export function formatNumber(value) {
  return plain.format(value);
}

// A currency code the browser does not know is shown after the number
// instead of failing.
export function formatMoney(value, currency) {
  if (!currency) return twoDecimals.format(value);
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(value);
  } catch {
    return `${twoDecimals.format(value)} ${currency}`;
  }
}

// A Key Result's value in its unit: 1,234.5 / 45% / $1,234.50.
export function formatValue(value, unit, currency) {
  if (value === null || value === undefined) return 'no value yet';
  if (unit === 'percent') return `${plain.format(value)}%`;
  if (unit === 'currency') return formatMoney(value, currency);
  return plain.format(value);
}

export function formatPercent(percent) {
  return `${oneDecimal.format(percent)}%`;
}

export function formatDate(text, none = 'never') {
  if (!text) return none;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? String(text) : date.toLocaleString();
}

const ROLES = {
  'platform-admin': 'platform admin',
  'tenant-admin': 'tenant admin',
  'org-admin': 'organization admin',
  member: 'member',
};

export function roleName(role) {
  return ROLES[role] || role;
}

export function isAdmin(role) {
  return role === 'platform-admin' || role === 'tenant-admin' || role === 'org-admin';
}

export function isTenantAdmin(role) {
  return role === 'platform-admin' || role === 'tenant-admin';
}

const AGGREGATIONS = {
  count: 'Count of rows',
  'count-values': 'Count of non-empty values',
  'count-distinct': 'Count of distinct values',
  sum: 'Sum',
  average: 'Average',
  min: 'Lowest value',
  max: 'Highest value',
};

export function aggregationName(name) {
  return AGGREGATIONS[name] || name;
}

const CONNECTION_STATUS = {
  ok: 'working',
  'needs-sign-in': 'needs sign-in',
  disabled: 'disabled by an admin',
};

export function connectionStatusName(status) {
  return CONNECTION_STATUS[status] || status;
}

// Why a sync failed, by its error kind, for people who do not read error codes.
const FAILURES = {
  unauthorized: 'Dynamics 365 refused the connection’s sign-in. An admin has to sign the connection in again.',
  'needs-sign-in': 'The connection needs a new sign-in before it can sync. An admin can do it on the Admin page.',
  throttled: 'Dynamics 365 asked to slow down, so the sync waits and tries again later.',
  'not-found': 'The view or column is gone from Dynamics 365. Link the Key Result to another metric.',
  upstream: 'Dynamics 365 answered with an error or could not be reached.',
  invalid: 'Dynamics 365 sent an answer that could not be used.',
  limit: 'The answer from Dynamics 365 was larger than allowed.',
  'host-limit': 'The sync took too long or needed too much memory, so it was stopped.',
  'host-refused': 'The sync tried to reach an address it is not allowed to reach.',
  'plugin-failure': 'The Dynamics 365 integration failed unexpectedly.',
  disabled: 'The integration is switched off for this organization or its tenant.',
};

export function failureWords(kind) {
  return FAILURES[kind] || 'The sync failed.';
}

// A preview's (or run's) measured value: money in its currency, dates as dates.
export function formatMeasured(value, valueType, currency) {
  if (value === null || value === undefined) return 'no value (the column is empty in every row)';
  if (valueType === 'date-time' || typeof value === 'string') return formatDate(value);
  return currency ? formatMoney(value, currency) : formatNumber(value);
}
