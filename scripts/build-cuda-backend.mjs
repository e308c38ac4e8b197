// Builds llama.cpp's CUDA backend (libggml-cuda.so) from the exact source of the prebuilt
// libraries, for machines where the 159 MB prebuilt CUDA package cannot be installed.
// Needs CUDA's nvcc and CMake. Usage: npm run build:cuda [-- --arch 90] ; then
//   export THINKWHEN_EXTRA_BACKENDS=<printed path>
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { headersCacheDir } from '../src/llama-paths.mjs';
import { extractFromBundle } from './llama-bundle.mjs';

const { values } = parseArgs({ options: { arch: { type: 'string', default: 'native' }, jobs: { type: 'string' } } });
const src = `${headersCacheDir()}-ggml-src`;
if (!existsSync(join(src, 'ggml', 'CMakeLists.txt'))) extractFromBundle(['ggml'], src);
// A wrapper project, so ggml builds as a subproject (no tests, examples or pkg-config files).
const wrapper = join(src, 'thinkwhen-cuda');
mkdirSync(wrapper, { recursive: true });
writeFileSync(
  join(wrapper, 'CMakeLists.txt'),
  'cmake_minimum_required(VERSION 3.14)\nproject(thinkwhen_ggml_cuda C CXX)\nadd_subdirectory(../ggml ggml)\n',
);
const build = join(src, `build-cuda-${values.arch}`);
const run = (args) => execFileSync('cmake', args, { stdio: 'inherit' });
run([
  '-S',
  wrapper,
  '-B',
  build,
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=ON',
  '-DGGML_BACKEND_DL=ON', // a loadable module, resolved against the prebuilt libggml-base.so
  '-DGGML_CPU=OFF',
  '-DGGML_CUDA=ON',
  '-DGGML_NATIVE=OFF',
  `-DCMAKE_CUDA_ARCHITECTURES=${values.arch}`,
]);
run(['--build', build, '--target', 'ggml-cuda', '-j', values.jobs ?? String(availableParallelism())]);
const lib = [join(build, 'bin', 'libggml-cuda.so'), join(build, 'src', 'ggml-cuda', 'libggml-cuda.so')].find(
  existsSync,
);
if (!lib) throw new Error(`libggml-cuda.so not found under ${build}`);
console.log(lib);
