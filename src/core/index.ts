export * from './errors.js';
export * from './redact.js';
export * from './config.js';
