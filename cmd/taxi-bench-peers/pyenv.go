package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
)

// pythonEnv is the venv with pyspark, pandas and kafka-python, and Spark's Kafka connector
// jars.
type pythonEnv struct {
	venv string
	jars []string
}

const completeMarker = ".complete"

// preparePython makes (once) a venv under the cache with requirements.txt from PyPI (pip's
// own download cache is ~/.cache/pip) and copies the Kafka connector jars from Maven
// Central (pom.xml). Both are keyed by a hash of their file, so an edit makes new ones.
func preparePython(ctx context.Context, cfg Config, log *slog.Logger) (*pythonEnv, error) {
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := kafkalocal.LockFile(filepath.Join(cfg.CacheDir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	venv := filepath.Join(cfg.CacheDir, "venv-"+shortHash(requirements))
	if _, err := os.Stat(filepath.Join(venv, completeMarker)); err != nil {
		python, err := exec.LookPath("python3")
		if err != nil {
			return nil, fmt.Errorf("python3 is needed for Spark and the original producer: %w", err)
		}
		log.Info("creating the Python venv (pyspark, pandas, pyarrow, kafka-python from PyPI)", "dir", venv)
		if err := os.RemoveAll(venv); err != nil {
			return nil, err
		}
		if err := run(ctx, "", python, "-m", "venv", venv); err != nil {
			return nil, err
		}
		req := filepath.Join(venv, "requirements.txt")
		if err := os.WriteFile(req, requirements, 0o644); err != nil {
			return nil, err
		}
		if err := run(ctx, "", filepath.Join(venv, "bin", "pip"), "install", "-q", "-r", req); err != nil {
			return nil, fmt.Errorf("pip install (PyPI): %w", err)
		}
		if err := os.WriteFile(filepath.Join(venv, completeMarker), nil, 0o644); err != nil {
			return nil, err
		}
	}

	jarDir := filepath.Join(cfg.CacheDir, "spark-kafka-"+shortHash(sparkPOM))
	lib := filepath.Join(jarDir, "lib")
	if _, err := os.Stat(filepath.Join(jarDir, completeMarker)); err != nil {
		mvn, err := exec.LookPath("mvn")
		if err != nil {
			return nil, fmt.Errorf("the Spark Kafka connector jars are resolved with Maven (mvn): %w", err)
		}
		log.Info("copying Spark's Kafka connector jars from Maven Central", "dir", lib)
		if err := os.MkdirAll(jarDir, 0o755); err != nil {
			return nil, err
		}
		pom := filepath.Join(jarDir, "pom.xml")
		if err := os.WriteFile(pom, sparkPOM, 0o644); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(lib); err != nil {
			return nil, err
		}
		if err := run(ctx, "", mvn, "-q", "-B", "-f", pom, "dependency:copy-dependencies",
			"-DexcludeTransitive=true", "-DoutputDirectory="+lib); err != nil {
			return nil, fmt.Errorf("Spark Kafka connector jars (Maven Central): %w", err)
		}
		if err := os.WriteFile(filepath.Join(jarDir, completeMarker), nil, 0o644); err != nil {
			return nil, err
		}
	}
	jars, err := filepath.Glob(filepath.Join(lib, "*.jar"))
	if err != nil || len(jars) == 0 {
		return nil, fmt.Errorf("no jars in %s", lib)
	}
	sort.Strings(jars)
	return &pythonEnv{venv: venv, jars: jars}, nil
}

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}
