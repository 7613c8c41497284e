# Build the Windows installer of transcriber: PyInstaller bundle, a check that it runs, then Inno Setup.
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
#
# Results: dist\transcriber\ (the bundle) and packaging\out\transcriber-VERSION-windows-x64-setup.exe.
# Needs: Python 3.11+ (64-bit) as `py -3` or `python`, and Inno Setup 6.3+ (iscc.exe on PATH or in
# its default folder). Written with care but NOT run on these Linux machines.
$ErrorActionPreference = "Stop"
$root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
$venv = Join-Path $root "packaging\out\venv-windows"

if (-not (Test-Path (Join-Path $venv "Scripts\python.exe"))) {
    Write-Host "== creating the build environment in $venv"
    if (Get-Command py -ErrorAction SilentlyContinue) { py -3 -m venv $venv } else { python -m venv $venv }
    if ($LASTEXITCODE -ne 0) { throw "could not create $venv" }
}
$python = Join-Path $venv "Scripts\python.exe"

Write-Host "== installing the app's dependencies and PyInstaller"
# The dependencies only: the app itself is taken from this checkout (PYTHONPATH below).
$requirements = Join-Path $venv "requirements.txt"
& $python -c "import sys, tomllib; p = tomllib.load(open(sys.argv[1], 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['window'] + p['optional-dependencies']['packaging']))" (Join-Path $root "pyproject.toml") | Set-Content -Encoding utf8 $requirements
& $python -m pip install --quiet --disable-pip-version-check -r $requirements
if ($LASTEXITCODE -ne 0) { throw "pip install failed" }

$env:PYTHONPATH = $root
$version = (& $python -c "import transcriber; print(transcriber.__version__)").Trim()

Write-Host "== freezing transcriber $version"
Push-Location $root
try {
    & $python -m PyInstaller --noconfirm --log-level WARN build.spec
    if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
} finally { Pop-Location }

Write-Host "== checking the bundle runs"
$exe = Join-Path $root "dist\transcriber\transcriber.exe"
& $exe --version
if ($LASTEXITCODE -ne 0) { throw "the frozen app does not start" }
& $exe self-test
if ($LASTEXITCODE -ne 0) { throw "the frozen app failed its self-test" }

Write-Host "== building the installer"
$iscc = (Get-Command iscc -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
if (-not (Test-Path $iscc)) { throw "Inno Setup 6 (ISCC.exe) not found" }
& $iscc "/DAppVersion=$version" (Join-Path $root "packaging\windows\transcriber.iss")
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Write-Host "done: packaging\out\transcriber-$version-windows-x64-setup.exe"
