// Checks a decoded Envoy message against its protoc-gen-validate rules ((validate.rules) field
// options, (validate.required) oneofs), as read from the .proto files: required messages and
// oneofs, string lengths/prefixes/header-safe values, numeric and duration ranges, defined enums,
// repeated/map sizes and item rules, and deprecated fields (Envoy warns or rejects). Any values are
// decoded by their type URL and checked too. Returns the violations as "path: rule" strings.

import type protobuf from 'protobufjs';
import { messageType } from '../../src/dataplane/envoy/protos.js';

type Rules = Record<string, unknown>;
type Obj = Record<string, unknown>;

function rulesOf(opts: Record<string, unknown>[] | undefined, key: string): Rules | undefined {
  let out: Rules | undefined;
  for (const o of opts ?? []) if (key in o) out = { ...(out ?? {}), ...(o[key] as Rules) };
  return out;
}

const num = (v: unknown): number => (typeof v === 'object' && v !== null ? Number((v as Obj).seconds ?? 0) + Number((v as Obj).nanos ?? 0) / 1e9 : Number(v));

function checkRange(r: Rules, v: number, at: string, errs: string[]): void {
  if (r.gt !== undefined && !(v > num(r.gt))) errs.push(`${at}: must be > ${num(r.gt)} (is ${v})`);
  if (r.gte !== undefined && !(v >= num(r.gte))) errs.push(`${at}: must be >= ${num(r.gte)} (is ${v})`);
  if (r.lt !== undefined && !(v < num(r.lt))) errs.push(`${at}: must be < ${num(r.lt)} (is ${v})`);
  if (r.lte !== undefined && !(v <= num(r.lte))) errs.push(`${at}: must be <= ${num(r.lte)} (is ${v})`);
  if (r.const !== undefined && v !== num(r.const)) errs.push(`${at}: must be ${num(r.const)}`);
}

function checkScalar(field: protobuf.Field, rules: Rules, v: unknown, at: string, errs: string[]): void {
  for (const [kind, r0] of Object.entries(rules)) {
    const r = r0 as Rules;
    if (kind === 'string' && typeof v === 'string') {
      if (r.min_len !== undefined && [...v].length < Number(r.min_len)) errs.push(`${at}: string.min_len ${r.min_len}`);
      if (r.max_len !== undefined && [...v].length > Number(r.max_len)) errs.push(`${at}: string.max_len ${r.max_len}`);
      if (r.min_bytes !== undefined && Buffer.byteLength(v) < Number(r.min_bytes)) errs.push(`${at}: string.min_bytes ${r.min_bytes}`);
      if (r.max_bytes !== undefined && Buffer.byteLength(v) > Number(r.max_bytes)) errs.push(`${at}: string.max_bytes ${r.max_bytes}`);
      if (r.prefix !== undefined && !v.startsWith(String(r.prefix))) errs.push(`${at}: string.prefix ${r.prefix}`);
      if (r.pattern !== undefined && !new RegExp(String(r.pattern)).test(v)) errs.push(`${at}: string.pattern ${r.pattern}`);
      if (Array.isArray(r.in) && !r.in.includes(v)) errs.push(`${at}: string.in`);
      // well_known_regex HTTP_HEADER_NAME/VALUE with strict=false: no NUL, CR or LF.
      if (r.well_known_regex !== undefined && /[\0\r\n]/.test(v)) errs.push(`${at}: ${String(r.well_known_regex)}`);
      if (r.well_known_regex === 'HTTP_HEADER_NAME' && r.strict !== false && !/^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/.test(v)) errs.push(`${at}: HTTP_HEADER_NAME`);
    } else if (/^(u?int|s?fixed|sint)(32|64)$|^(double|float)$/.test(kind) && v !== undefined) {
      // Wrapper types (UInt32Value...) carry the rules of their `value`.
      checkRange(r, typeof v === 'object' && v !== null && 'value' in v ? Number((v as Obj).value) : Number(v), at, errs);
    } else if (kind === 'enum' && r.defined_only && v !== undefined) {
      const values = (field.resolvedType as protobuf.Enum | null)?.values ?? {};
      if (!(String(v) in values) && !Object.values(values).includes(Number(v))) errs.push(`${at}: enum value ${String(v)} not defined`);
    } else if (kind === 'duration' && v !== undefined && v !== null) {
      checkRange(r, num(v), at, errs);
    } else if (kind === 'message' && r.required && (v === undefined || v === null)) {
      errs.push(`${at}: message.required`);
    }
  }
  if ('duration' in rules && (rules.duration as Rules).required && v === undefined) errs.push(`${at}: duration.required`);
  if ('any' in rules && (rules.any as Rules).required && v === undefined) errs.push(`${at}: any.required`);
}

export function validateMessage(typeName: string, obj: Obj, at = typeName): string[] {
  const errs: string[] = [];
  const t = messageType(typeName);
  walk(t, obj, at, errs);
  return errs;
}

/** Decode an encoded message (e.g. an Any's value) and validate it. */
export function validateEncoded(typeUrl: string, bytes: Uint8Array, at = typeUrl): string[] {
  const t = messageType(typeUrl);
  const obj = t.toObject(t.decode(bytes), { longs: String, enums: String, defaults: false, oneofs: false, bytes: Buffer }) as Obj;
  const errs: string[] = [];
  walk(t, obj, at, errs);
  return errs;
}

function walk(t: protobuf.Type, obj: Obj, at: string, errs: string[]): void {
  if (t.fullName === '.google.protobuf.Any') {
    const url = String(obj.type_url ?? '');
    if (url) errs.push(...validateEncoded(url, obj.value as Uint8Array, `${at}<${url.split('/').pop()}>`));
    return;
  }
  for (const oneof of t.oneofsArray) {
    const req = ((oneof.parsedOptions ?? []) as Obj[]).some((o) => o['(validate.required)'] === true);
    if (req && !oneof.fieldsArray.some((f) => obj[f.name] !== undefined && obj[f.name] !== null)) errs.push(`${at}: oneof ${oneof.name} is required`);
  }
  for (const f of t.fieldsArray) {
    const v = obj[f.name];
    const fat = `${at}.${f.name}`;
    const present = v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
    if (present && f.options?.deprecated) errs.push(`${fat}: deprecated field`);
    const rules = rulesOf(f.parsedOptions as Obj[] | undefined, '(validate.rules)');
    // PGV applies a oneof member's rules only when that member is the one set.
    if (rules && !(f.partOf && !present)) {
      if (f.repeated && rules.repeated) {
        const r = rules.repeated as Rules;
        const n = Array.isArray(v) ? v.length : 0;
        if (r.min_items !== undefined && n < Number(r.min_items)) errs.push(`${fat}: repeated.min_items ${r.min_items}`);
        if (r.max_items !== undefined && n > Number(r.max_items)) errs.push(`${fat}: repeated.max_items ${r.max_items}`);
        if (r.items && Array.isArray(v)) v.forEach((x, i) => checkScalar(f, r.items as Rules, x, `${fat}[${i}]`, errs));
      } else if (f.map && rules.map) {
        const r = rules.map as Rules;
        const n = v ? Object.keys(v as Obj).length : 0;
        if (r.min_pairs !== undefined && n < Number(r.min_pairs)) errs.push(`${fat}: map.min_pairs ${r.min_pairs}`);
      } else {
        checkScalar(f, rules, v, fat, errs);
      }
    }
    if (!present) continue;
    const rt = f.resolvedType;
    if (rt && 'fieldsArray' in rt) {
      const mt = rt;
      if (f.map) for (const [k, x] of Object.entries(v as Obj)) walk(mt, x as Obj, `${fat}[${k}]`, errs);
      else if (f.repeated) (v as Obj[]).forEach((x, i) => walk(mt, x, `${fat}[${i}]`, errs));
      else walk(mt, v as Obj, fat, errs);
    } else if (rt && 'values' in rt && !f.repeated) {
      const ev = (rt as protobuf.Enum).valuesOptions?.[String(v)];
      if (ev?.deprecated) errs.push(`${fat}: deprecated enum value ${String(v)}`);
    }
  }
}
