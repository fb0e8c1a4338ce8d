/** The CLI with the test-only faulty exporter added to the product's components (test/e2e/lifecycle.test.ts). */
import { FACTORIES } from '../components.js';
import { runAsProcess } from '../main.js';
import { faultyExporterFactory } from './faults.js';

runAsProcess([...FACTORIES, faultyExporterFactory]);
