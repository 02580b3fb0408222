// The host side of goals:integration@0.2.0 for the plugin under Node: storage
// private to the one connection the harness acts on, a deadline, and a log.
const kept = new Map();

export const storage = {
  get(key) {
    const entry = kept.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires !== undefined && entry.expires <= Date.now()) {
      kept.delete(key);
      return undefined;
    }
    return entry.value;
  },
  set(key, value, ttlSeconds) {
    const expires = ttlSeconds === undefined ? undefined : Date.now() + ttlSeconds * 1000;
    kept.set(key, { value: new Uint8Array(value), expires });
  },
  delete(key) {
    kept.delete(key);
  },
};

export const deadline = {
  remainingMilliseconds() {
    return 60000n;
  },
};

export const log = {
  write(level, message) {
    if (level === 'warn' || level === 'error') console.error(`[${level}] ${message}`);
  },
};
