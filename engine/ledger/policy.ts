/**
 * Declarative policy (`policy.json` in a bundle) and the gate that evaluates appends against it.
 * Rules are tried in order; the first whose `match` fits the event decides (`allow` or `deny`),
 * unless its `unless` also fits. No matching rule falls back to `default` (deny unless set).
 * Evaluation is a pure function of (policy, trust graph, event): deterministic by construction.
 *
 * @example
 *   { "version": 1, "default": "deny", "rules": [
 *     { "id": "leads-deploy", "effect": "allow", "match": { "ns": "ops", "type": "deploy.*", "actor": "@leads" } },
 *     { "id": "no-ops", "effect": "deny", "match": { "ns": "ops" }, "reason": "ops is for leads" },
 *     { "id": "rest", "effect": "allow", "match": {} } ] }
 */
import { GatosError } from '../errors.js';
import { membersOf, type TrustGraph } from './trust.js';

export interface RuleMatch {
  ns?: string;
  type?: string;
  actor?: string;
  caps?: string[];
}

export interface PolicyRule {
  id: string;
  effect: 'allow' | 'deny';
  match: RuleMatch;
  unless?: RuleMatch;
  reason?: string;
}

/** Who may read which state paths (used by the GraphQL gateway); first match wins, else deny. */
export interface ReadRule {
  id: string;
  effect: 'allow' | 'deny';
  path: string;
  actor?: string;
}

/** Quorum and time-to-live required for a governed action (`governance.<action>`). */
export interface GovernanceRule {
  quorum: string;
  ttl?: string;
}

export interface Policy {
  version: 1;
  default?: 'allow' | 'deny';
  rules: PolicyRule[];
  read?: ReadRule[];
  governance?: Record<string, GovernanceRule>;
}

export interface Decision {
  allow: boolean;
  rule: string;
  reason: string;
}

export interface Intent {
  ns: string;
  type: string;
  actor: string;
  caps?: string[];
}

function invalid(message: string): GatosError {
  return new GatosError('invalid_policy', message);
}

function checkMatch(match: unknown, where: string): RuleMatch {
  if (match === null || typeof match !== 'object' || Array.isArray(match)) throw invalid(`${where} must be an object`);
  for (const [key, value] of Object.entries(match)) {
    if (key === 'caps') {
      if (!Array.isArray(value) || value.some((cap) => typeof cap !== 'string')) throw invalid(`${where}.caps must be an array of strings`);
    } else if (key === 'ns' || key === 'type' || key === 'actor') {
      if (typeof value !== 'string' || value === '') throw invalid(`${where}.${key} must be a non-empty string`);
    } else {
      throw invalid(`${where} has an unknown field ${JSON.stringify(key)}`);
    }
  }
  return match as RuleMatch;
}

/** Validates a parsed `policy.json`; throws `invalid_policy` naming the first problem. */
export function checkPolicy(value: unknown): Policy {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('policy.json must hold an object');
  const policy = value as Record<string, unknown>;
  if (policy.version !== 1) throw invalid('policy.json: "version" must be 1');
  if (policy.default !== undefined && policy.default !== 'allow' && policy.default !== 'deny')
    throw invalid('policy.json: "default" must be "allow" or "deny"');
  if (!Array.isArray(policy.rules)) throw invalid('policy.json: "rules" must be an array');
  const ids = new Set<string>();
  policy.rules.forEach((rule: unknown, i) => {
    const where = `rules[${i}]`;
    if (rule === null || typeof rule !== 'object') throw invalid(`${where} must be an object`);
    const r = rule as Record<string, unknown>;
    if (typeof r.id !== 'string' || !/^[A-Za-z0-9._-]+$/.test(r.id)) throw invalid(`${where}.id must be letters, digits and . _ -`);
    if (ids.has(r.id)) throw invalid(`${where}.id ${r.id} is used twice`);
    ids.add(r.id);
    if (r.effect !== 'allow' && r.effect !== 'deny') throw invalid(`${where}.effect must be "allow" or "deny"`);
    checkMatch(r.match, `${where}.match`);
    if (r.unless !== undefined) checkMatch(r.unless, `${where}.unless`);
    if (r.reason !== undefined && typeof r.reason !== 'string') throw invalid(`${where}.reason must be a string`);
  });
  if (policy.read !== undefined) checkReadRules(policy.read);
  if (policy.governance !== undefined) checkGovernance(policy.governance);
  return value as Policy;
}

function checkReadRules(read: unknown): void {
  if (!Array.isArray(read)) throw invalid('policy.json: "read" must be an array');
  read.forEach((rule: unknown, i) => {
    const r = (rule ?? {}) as Record<string, unknown>;
    if (typeof r.id !== 'string' || r.id === '') throw invalid(`read[${i}].id must be a non-empty string`);
    if (r.effect !== 'allow' && r.effect !== 'deny') throw invalid(`read[${i}].effect must be "allow" or "deny"`);
    if (typeof r.path !== 'string' || r.path === '') throw invalid(`read[${i}].path must be a non-empty string`);
    if (r.actor !== undefined && typeof r.actor !== 'string') throw invalid(`read[${i}].actor must be a string`);
  });
}

function checkGovernance(governance: unknown): void {
  if (governance === null || typeof governance !== 'object' || Array.isArray(governance))
    throw invalid('policy.json: "governance" must be an object');
  for (const [action, rule] of Object.entries(governance)) {
    const r = (rule ?? {}) as Record<string, unknown>;
    if (!/^[a-z0-9_.-]+$/.test(action)) throw invalid(`governance.${action}: action names are [a-z0-9_.-]+`);
    if (typeof r.quorum !== 'string' || !/^\d+-of-\d*@[A-Za-z0-9._-]+$/.test(r.quorum))
      throw invalid(`governance.${action}.quorum must look like 2-of-@leads`);
    if (r.ttl !== undefined && typeof r.ttl !== 'string') throw invalid(`governance.${action}.ttl must be a string such as PT72H`);
  }
}

/** `*` matches any run of characters (including `/` and `.`); everything else is literal. */
function glob(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*');
  return new RegExp(`^${escaped}$`).test(value);
}

function fits(match: RuleMatch, intent: Intent, trust: TrustGraph): boolean {
  if (match.ns !== undefined && !glob(match.ns, intent.ns)) return false;
  if (match.type !== undefined && !glob(match.type, intent.type)) return false;
  if (match.actor !== undefined && !membersOf(trust, match.actor).includes(intent.actor)) return false;
  if (match.caps !== undefined && !match.caps.every((cap) => intent.caps?.includes(cap))) return false;
  return true;
}

/** May `actor` read state `path`? Read rules are deny-by-default (no rule, no read). */
export function evaluateRead(policy: Policy, trust: TrustGraph, actor: string, path: string): Decision {
  for (const rule of policy.read ?? []) {
    if (!glob(rule.path, path) || (rule.actor !== undefined && !membersOf(trust, rule.actor).includes(actor))) continue;
    return {
      allow: rule.effect === 'allow',
      rule: rule.id,
      reason: `${rule.effect === 'allow' ? 'allowed' : 'denied'} by read rule ${rule.id}`,
    };
  }
  return { allow: false, rule: 'default', reason: 'no read rule allows it' };
}

export function evaluate(policy: Policy, trust: TrustGraph, intent: Intent): Decision {
  for (const rule of policy.rules) {
    if (!fits(rule.match, intent, trust) || (rule.unless && fits(rule.unless, intent, trust))) continue;
    const reason = rule.reason ?? `${rule.effect === 'allow' ? 'allowed' : 'denied'} by rule ${rule.id}`;
    return { allow: rule.effect === 'allow', rule: rule.id, reason };
  }
  const allow = policy.default === 'allow';
  return { allow, rule: 'default', reason: allow ? 'allowed by default' : 'no rule allows it (deny by default)' };
}
