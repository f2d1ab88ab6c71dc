#!/bin/sh
# Regenerates the seed corpus of fuzz/fuzz_format.c in t/fuzz/format/.
# Each seed: one flag byte (see fuzz_format.c) + one JSON document.
# usage: sh util/make_fuzz_seeds.sh [sample-dir]   (run from the repo root)
set -eu

sample=${1:-../shared/data/synthea-10}
out=t/fuzz/format

rm -rf "$out"
mkdir -p "$out"

# seed NAME FLAGBYTE(octal) JSON
seed() {
    printf "\\$2" > "$out/$1"
    printf '%s' "$3" >> "$out/$1"
}

# the smallest line (< 3900 bytes) of each sample file, as FHIR, to Aidbox
# (\001) and with strip + to Aidbox (\005)
if [ -d "$sample" ]; then
    for f in "$sample"/*.ndjson; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .ndjson | sed 's/\..*//')
        line=$(awk 'length($0) < 3900 { print length($0) " " NR }' "$f" \
               | sort -n | head -1 | cut -d' ' -f2)
        [ -n "$line" ] || continue
        doc=$(sed -n "${line}p" "$f")
        seed "sample-$name" 001 "$doc"
        seed "sample-$name-strip" 005 "$doc"
    done
fi

# cases of t/unit/test_format.c, FHIR form (to Aidbox)
seed ref-rel 001 '{"resourceType":"Observation","subject":{"reference":"Patient/pt-1","display":"X"},"focus":[{"reference":"#p1"},{"reference":"urn:uuid:1"},{"reference":"Patient/1/_history/2"},{"reference":"http://x/Patient/1"},{"reference":"Patient/a b","id":"e"}]}'
seed ref-keys 001 '{"resourceType":"Observation","performer":[{"extension":[{"url":"u","valueString":"s"}],"reference":"Practitioner/pr-1","type":"Practitioner","identifier":{"system":"s","value":"v","assigner":{"reference":"Organization/o1"}},"display":"Dr"}]}'
seed choice 001 '{"resourceType":"Observation","valueQuantity":{"value":1.50,"unit":"kg"},"effectiveDateTime":"2020","component":[{"valueBoolean":false},{"valueInteger":-12},{"valuePeriod":{"start":"2020"}}],"note":[{"authorReference":{"reference":"Practitioner/1"}},{"authorString":"Bob"}]}'
seed choice-ref 001 '{"resourceType":"MedicationRequest","medicationReference":{"reference":"Medication/m1"},"dosageInstruction":[{"timing":{"repeat":{"boundsPeriod":{"start":"s"}}},"asNeededBoolean":true,"doseAndRate":[{"doseQuantity":{"value":1.0}}]}]}'
seed ext 001 '{"resourceType":"Patient","extension":[{"url":"a","extension":[{"url":"b","valueCoding":{"code":"c"}},{"url":"c","extension":[{"url":"d","valueReference":{"reference":"Patient/2"}},{"url":"e","valueDecimal":0.10}]}]}],"modifierExtension":[{"url":"m","valueBoolean":true}],"_birthDate":{"extension":[{"url":"t","valueDateTime":"x"}]}}'
seed contained 001 '{"resourceType":"Observation","contained":[{"id":"p1","managingOrganization":{"reference":"Organization/o1"},"resourceType":"Patient"},{"id":"m1","ingredient":[{"itemReference":{"reference":"Substance/s"}}],"resourceType":"Medication"}],"subject":{"reference":"#p1"}}'
seed bundle 003 '{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","valueString":"v","subject":{"reference":"urn:uuid:2"}}},{"resource":{"valueQuantity":{"value":1},"resourceType":"Observation"}}]}'
seed parameters 001 '{"resourceType":"Parameters","parameter":[{"name":"a","valueString":"x","part":[{"name":"b","valueInteger":1}]},{"name":"r","resource":{"resourceType":"Patient","generalPractitioner":[{"reference":"Practitioner/1"}]}}]}'
seed questionnaire 001 '{"resourceType":"Questionnaire","item":[{"linkId":"1","item":[{"linkId":"1.1","enableWhen":[{"question":"q","answerReference":{"reference":"Patient/1"}}],"initial":[{"valueString":"s"}],"item":[{"linkId":"1.1.1","answerOption":[{"valueCoding":{"code":"c"}}]}]}]}]}'
seed values 001 '{"resourceType":"Patient","a":"q\"b\\s\/n\n\t\u0001\u00e9\ud83d\ude00 é 😀","n":[3.8227768159088433,1.50,1e5,-0,1E-7],"b":[true,false,null,{},[]]}'
seed strip 005 '{"resourceType":"Patient","id":"1","meta":{"versionId":"3","lastUpdated":"t","createdAt":"c","profile":["p"],"extension":[{"url":"ex:createdAt","valueInstant":"c"},{"url":"o","valueString":"s"}]},"active":true}'
seed strip-empty 004 '{"meta":{"extension":[{"url":"ex:createdAt"}],"versionId":"1"},"a":1}'

# Aidbox form (to FHIR, with inject: \012; plain: \002)
seed aidbox-ref 002 '{"subject":{"id":"pt-1","display":"X","resourceType":"Patient"},"focus":[{"localRef":"p1"},{"uri":"urn:uuid:1"},{"id":"only"},{"resourceType":"Patient"}],"resourceType":"Observation"}'
seed aidbox-choice 002 '{"value":{"Quantity":{"value":1}},"effective":{"dateTime":"2020"},"component":[{"value":{"foo":1}},{"value":{}}],"note":[{"author":{"Reference":{"id":"1","resourceType":"Practitioner"}}}],"resourceType":"Observation"}'
seed aidbox-inject 012 '{"id":"old","meta":{"extension":[{"url":"o","value":{"string":"s"}},{"url":"ex:createdAt","valueInstant":"old"}],"versionId":"1","tag":[{"code":"t"}]},"resourceType":"Patient","managingOrganization":{"id":"o","resourceType":"Organization"}}'
seed aidbox-inject-nometa 032 '{"gender":"f","extension":[{"url":"x","value":{"Reference":{"id":"1","resourceType":"Patient"}}}]}'
seed aidbox-inject-none 010 '{"meta":{"createdAt":"old","lastUpdated":"old"},"value":{"string":"x"}}'

# errors
seed err-json 001 '{"a":}'
seed err-array 001 '[{}]'
seed err-trailing 001 '{} x'
seed err-deep 001 '{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}'
printf '\001{"a":"\377"}' > "$out/err-utf8"

# the fast parser's edges: escapes, jsonb's text form, forms it leaves to yajl
printf '\001{"resourceType":"Patient","id":"e1","name":[{"family":"a\\"b\\\\c\\/d\\n\\t\\u00fc\\u20ac"}],"note":"\\ud83d\\ude00 \\u0041"}' > "$out/fast-escapes"
printf '\012{"meta": {"versionId": "1"}, "name": [{"given": ["J\303\274rgen \342\202\254 \360\237\230\200"]}], "subject": {"id": "p1", "resourceType": "Patient"}, "value": {"Quantity": {"value": 1.50e+2}}}' > "$out/fast-jsonb-text"
printf '\001{"a":[ -0.0 , 1E5 , true , false , null , {} , [] ],\f"b":"\\u0000","c":"\300\257"}' > "$out/fast-edges"

ls "$out" | wc -l | sed 's/$/ seeds/'
du -sb "$out" | cut -f1 | sed 's/$/ bytes/'

