// Read a BPMN file the way bpmn.io and Camunda Modeler do (bpmn-moddle) and write it back out,
// to prove our files and their spiffworkflow extensions survive a standard modeller.
//   node tools/moddle_roundtrip.mjs FILE.bpmn > OUT.bpmn
import { readFileSync } from 'node:fs';
import { BpmnModdle } from 'bpmn-moddle';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node tools/moddle_roundtrip.mjs FILE.bpmn');
  process.exit(2);
}
const moddle = new BpmnModdle();
const { rootElement, warnings } = await moddle.fromXML(readFileSync(file, 'utf8'));
for (const warning of warnings) {
  console.error(`warning: ${warning.message}`);
}
const { xml } = await moddle.toXML(rootElement, { format: true });
process.stdout.write(xml);
process.exit(warnings.length ? 1 : 0);
