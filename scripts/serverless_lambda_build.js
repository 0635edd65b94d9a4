'use strict';

// osls plugin: build the deployment zip with scripts/build_lambda.py (pip wheels for the Lambda
// platform, no Docker) where osls would otherwise zip the service directory, and write it to the
// `package.artifact` path of serverless.yml so that osls ships exactly that file.

const path = require('path');
const { spawnSync } = require('child_process');

class LambdaBuildPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:createDeploymentArtifacts': () => this.build(),
      'before:deploy:function:packageFunction': () => this.build(),
    };
  }

  build() {
    const { service } = this.serverless;
    const artifact = service.package && service.package.artifact;
    if (!artifact) {
      throw new this.serverless.classes.Error(
        'serverless_lambda_build: set package.artifact in serverless.yml to the zip to build'
      );
    }
    const functions = service.getAllFunctions().map((name) => service.getFunction(name));
    const runtime = pickOne('runtime', functions.map((f) => f.runtime || service.provider.runtime));
    const architecture = pickOne(
      'architecture',
      functions.map((f) => f.architecture || service.provider.architecture || 'x86_64')
    );

    const serviceDir = this.serverless.serviceDir;
    const args = [
      path.join(serviceDir, 'scripts', 'build_lambda.py'),
      '--runtime', runtime,
      '--architecture', architecture,
      '--requirements', path.join(serviceDir, 'requirements.txt'),
      '--build-dir', path.join(serviceDir, 'build', 'lambda'),
      '--output', path.resolve(serviceDir, artifact),
    ];
    const pythons = process.env.LAMBDA_BUILD_PYTHON
      ? [process.env.LAMBDA_BUILD_PYTHON]
      : ['python3', 'python'];
    for (const python of pythons) {
      const result = spawnSync(python, args, { cwd: serviceDir, stdio: 'inherit' });
      if (result.error && result.error.code === 'ENOENT') continue;
      if (result.status === 0) return;
      throw new this.serverless.classes.Error(
        `serverless_lambda_build: ${python} scripts/build_lambda.py failed (exit ${result.status})`
      );
    }
    throw new this.serverless.classes.Error(
      'serverless_lambda_build: no python3 on PATH to run scripts/build_lambda.py'
    );

    function pickOne(what, values) {
      const distinct = [...new Set(values)];
      if (distinct.length !== 1) {
        throw new Error(`serverless_lambda_build: every function must share one ${what}`);
      }
      return distinct[0];
    }
  }
}

module.exports = LambdaBuildPlugin;
