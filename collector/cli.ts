/**
 * ebpf-collector [run] [--config FILE] | validate [--config FILE] | --help | --version
 * Exit status: 0 success, 2 configuration error, 1 any other failure.
 */
import { FACTORIES } from './components.js';
import { runAsProcess } from './main.js';

runAsProcess(FACTORIES);
