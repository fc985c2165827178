export * from './manifest.js';
export * from './podspec.js';
export * from './findings.js';
