package tlc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// OpenFile opens a local TLC file by its extension: .parquet, or .csv / .csv.gz. The Source's
// Name is the base name; Close also closes the file.
func OpenFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tlc: %w", err)
	}
	name := filepath.Base(path)
	src, err := openSource(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileSource{Source: src, file: f}, nil
}

func openSource(name string, f *os.File) (Source, error) {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".parquet"):
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("tlc: %s: %w", name, err)
		}
		return OpenParquet(name, f, st.Size())
	case strings.HasSuffix(lower, ".csv"), strings.HasSuffix(lower, ".csv.gz"):
		return OpenCSV(name, f)
	}
	return nil, fmt.Errorf("tlc: %s: unknown file type, want .parquet, .csv or .csv.gz", name)
}

type fileSource struct {
	Source
	file *os.File
}

func (s *fileSource) Close() error {
	return errors.Join(s.Source.Close(), s.file.Close())
}
