; Inno Setup 6.3+ script: the Windows installer for transcriber (64-bit).
;
; It packs the PyInstaller folder dist\transcriber (from build.spec) into
; transcriber-VERSION-windows-x64-setup.exe. packaging\windows\build.ps1 does the whole
; build; by hand, from the repository root:
;
;   pyinstaller --noconfirm build.spec
;   iscc /DAppVersion=0.1.0 packaging\windows\transcriber.iss
;
; The version is passed in (build.ps1 reads it from transcriber\__init__.py), never
; written here. Written with care but NOT built or run on these Linux machines.
;
; Installs per user by default (no administrator rights needed; the setup offers an
; all-users install too), adds a Start menu entry, optionally a desktop icon and the
; program folder on PATH so that `transcriber` works in a terminal. The user's data
; (%LOCALAPPDATA%\transcriber: jobs, transcripts, settings) stays on uninstall.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z (the one in transcriber\__init__.py)
#endif

#define AppName "Transcriber"
#define AppExe "transcriber.exe"
; Paths are relative to this script's folder.
#define Bundle "..\..\dist\transcriber"

[Setup]
; The AppId identifies the app to Windows across versions (upgrades, uninstall): never change it.
AppId={{86A75A9E-5311-4571-928E-57EC2BDA8E20}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=The transcriber developers
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Windows 10 or later (what Qt 6 supports).
MinVersion=10.0
OutputDir=..\out
OutputBaseFilename=transcriber-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\resources\icons\transcriber.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
WizardStyle=modern
; The model and the libraries are already compressed data for the most part; maximum LZMA
; settings would take minutes for a few percent.
Compression=lzma2
SolidCompression=yes
ChangesEnvironment=yes
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add transcriber to PATH (to use it from a terminal)"; GroupDescription: "Command line:"; Flags: unchecked

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; An upgrade replaces the bundle wholesale: files a newer build no longer has must not linger.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Turn audio and video files into text on this computer"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
// PATH is edited in code rather than with a [Registry] entry: an uninstall must remove our
// folder from PATH, and a registry flag could only delete the whole PATH value.

function EnvironmentKey(var Root: Integer): String;
begin
  if IsAdminInstallMode then begin
    Root := HKEY_LOCAL_MACHINE;
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment';
  end else begin
    Root := HKEY_CURRENT_USER;
    Result := 'Environment';
  end;
end;

function PathWithout(Path, Folder: String): String;
var
  Rest, Part: String;
  Position: Integer;
begin
  Result := '';
  Rest := Path;
  while Rest <> '' do begin
    Position := Pos(';', Rest);
    if Position = 0 then begin
      Part := Rest;
      Rest := '';
    end else begin
      Part := Copy(Rest, 1, Position - 1);
      Rest := Copy(Rest, Position + 1, Length(Rest));
    end;
    if (Part <> '') and (CompareText(RemoveBackslashUnlessRoot(Part), RemoveBackslashUnlessRoot(Folder)) <> 0) then begin
      if Result <> '' then
        Result := Result + ';';
      Result := Result + Part;
    end;
  end;
end;

procedure SetPathEntry(Folder: String; Present: Boolean);
var
  Root: Integer;
  Key, Path, Updated: String;
begin
  Key := EnvironmentKey(Root);
  if not RegQueryStringValue(Root, Key, 'Path', Path) then
    Path := '';
  Updated := PathWithout(Path, Folder);
  if Present then begin
    if Updated <> '' then
      Updated := Updated + ';';
    Updated := Updated + Folder;
  end;
  if Updated <> Path then
    // REG_EXPAND_SZ keeps entries such as %USERPROFILE%\bin working.
    RegWriteExpandStringValue(Root, Key, 'Path', Updated);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and WizardIsTaskSelected('addtopath') then
    SetPathEntry(ExpandConstant('{app}'), True);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    SetPathEntry(ExpandConstant('{app}'), False);
end;
