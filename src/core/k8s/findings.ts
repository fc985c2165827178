/**
 * Lint findings shared by `kimia lint` and `runcvm lint`: one shape, one text rendering
 * (`FILE:LINE: level rule-id: message` then `  fix: …`), one JSON rendering and one exit-code rule.
 */

export type FindingLevel = 'info' | 'warn' | 'error';

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly level: FindingLevel;
  readonly rule: string;
  readonly message: string;
  readonly fix: string;
}

/** A finding before it knows its file: rules are pure over one parsed file set. */
export type RuleFinding = Omit<Finding, 'file'> & { readonly file?: string };

const ORDER: Record<FindingLevel, number> = { error: 0, warn: 1, info: 2 };

export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || ORDER[a.level] - ORDER[b.level] || a.rule.localeCompare(b.rule));
}

export function formatFinding(f: Finding): string {
  const fix = f.fix.split('\n').join('\n       ');
  return `${f.file}:${f.line}: ${f.level} ${f.rule}: ${f.message}\n  fix: ${fix}`;
}

export function summarize(findings: readonly Finding[]): { errors: number; warnings: number; infos: number } {
  return {
    errors: findings.filter((f) => f.level === 'error').length,
    warnings: findings.filter((f) => f.level === 'warn').length,
    infos: findings.filter((f) => f.level === 'info').length,
  };
}

export function formatText(findings: readonly Finding[]): string {
  const s = summarize(findings);
  const body = sortFindings(findings).map(formatFinding);
  body.push(`${s.errors} error(s), ${s.warnings} warning(s), ${s.infos} info`);
  return body.join('\n') + '\n';
}

export function formatJson(findings: readonly Finding[]): string {
  return JSON.stringify({ findings: sortFindings(findings), summary: summarize(findings) }, null, 2) + '\n';
}

/** 0 when only info/warn, 1 on any error-level finding. (2, usage errors, is decided by the caller.) */
export function lintExitCode(findings: readonly Finding[]): number {
  return findings.some((f) => f.level === 'error') ? 1 : 0;
}
